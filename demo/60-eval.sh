#!/usr/bin/env bash
# Stage 6: evaluate the demo's Azure job (fine-tuned and deployed on the emulator by 40-apply.sh) against its
# base model on the held-out test split, write the reports, and let the promotion gate decide.
set -euo pipefail
out="${FTOPS_DEMO_OUT:?}/eval"
job=helpdesk-gpt41mini
mkdir -p "$out"

# The job's judge (gpt-4.1) is not deployed in `local`; the emulator would only echo it anyway.
echo "-- evaluate $job in local: fine-tuned deployment vs the base model, clean and perturbed inputs"
ftops eval "$job" --env local --no-judge --out "$out"

echo "-- again: every answer is already stored, nothing is asked twice"
ftops eval "$job" --env local --no-judge --out "$out" --json > "$out/rerun.json"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("requests:", r["requests"])' "$out/rerun.json"

echo "-- --batch is refused: the Azure OpenAI Batch API does not serve fine-tuned models (exit 1 expected)"
if ftops eval "$job" --env local --no-judge --batch --out "$out/batch"; then
  echo "--batch on a fine-tuned deployment should have been refused" >&2
  exit 1
fi

echo "-- reports"
ls -1 "$out"/report.md "$out"/report.html "$out"/evaluation.json

echo "-- promote $job from local to staging: the gate reads the evaluation"
ftops promote "$job" --from local --to staging --no-judge --evaluation "$out/evaluation.json"

echo "-- a candidate that learned nothing (the base model itself) is refused, naming the metric (exit 1 expected)"
if ftops promote "$job" --from local --to staging --no-judge --fine-tuned azure:grader --base azure:grader; then
  echo "the gate should have refused" >&2
  exit 1
fi
