#!/usr/bin/env bash
# Stage 6: evaluate the demo's Azure job (fine-tuned and deployed on the emulator by 40-apply.sh) against its
# base model on the held-out test split, write the reports, record the model with the gate's verdict.
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

echo "-- --batch is refused: the Azure OpenAI Batch API does not serve fine-tuned models (exit 1 expected)"
if ftops eval "$job" --env local --no-judge --batch --out "$out/batch"; then
  echo "--batch on a fine-tuned deployment should have been refused" >&2
  exit 1
fi

echo "-- reports"
ls -1 "$out"/report.md "$out"/report.html "$out"/evaluation.json

echo "-- the model record: the artifact (fine-tuned model id and the account that trained it), lineage, the"
echo "   evaluation that gated it, approval (pending until promoted) and where it serves"
ftops models show "$job" --env local
ftops models list --env local

echo "-- an evaluation of a deployment picked by hand is not an evaluation of the job's model: promote refuses it"
echo "   offline, in one line (exit 1 expected)"
ftops eval "$job" --env local --no-judge --fine-tuned azure:grader --base azure:grader --out "$out/by-hand" --json > /dev/null
if ftops promote "$job" --from local --to staging --no-judge --evaluation "$out/by-hand/evaluation.json"; then
  echo "promote should have refused" >&2
  exit 1
fi
