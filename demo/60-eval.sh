#!/usr/bin/env bash
# Stage 6: evaluate the demo's Azure job (fine-tuned and deployed on the emulator by 40-apply.sh) against its
# base model on the held-out test split, write the reports, and let the promotion gate decide.
set -euo pipefail
# `evaluation/`, not the `eval/` of earlier demos: ftops writes only into a folder it made (an eval/ left by a
# version before ownership markers holds files ftops cannot prove are its own).
out="${FTOPS_DEMO_OUT:?}/evaluation"
job=helpdesk-gpt41mini

# The job's judge (gpt-4.1) is not deployed in `local`; the emulator would only echo it anyway.
echo "-- evaluate $job in local: fine-tuned deployment vs the base model, clean and perturbed inputs"
ftops eval "$job" --env local --no-judge --out "$out"

echo "-- again: every answer is already stored, nothing is asked twice"
ftops eval "$job" --env local --no-judge --out "$out" --json > "$out/rerun.json"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("requests:", r["requests"])' "$out/rerun.json"

echo "-- the same test set through the Azure OpenAI Batch API (same scores, no rate limits)"
ftops eval "$job" --env local --no-judge --batch --out "$out/batch" --json > "$out/batch.json"
python3 - "$out/rerun.json" "$out/batch.json" <<'PY'
import json, sys
direct, batch = (json.load(open(p)) for p in sys.argv[1:])
same = direct["metrics"] == batch["metrics"]
print("batch scores equal per-request scores:", same)
sys.exit(0 if same else 1)
PY

echo "-- reports"
ls -1 "$out"/report.md "$out"/report.html "$out"/evaluation.json

echo "-- promote $job from local to staging: the gate reads the evaluation"
ftops promote "$job" --from local --to staging --no-judge --evaluation "$out/evaluation.json"

echo "-- a candidate that learned nothing (the base model itself) is refused, naming the metric (exit 1 expected)"
if ftops promote "$job" --from local --to staging --no-judge --fine-tuned azure:grader --base azure:grader; then
  echo "the gate should have refused" >&2
  exit 1
fi
