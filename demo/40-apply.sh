#!/usr/bin/env bash
# Stage 40: plan and apply the rendered `local` jobs (exactly once per idempotency key), watch them live,
# write the loss plots and results, deploy the Azure model on the emulator, and render the GitOps workflow.
# The SageMaker job really trains on this CPU with the local runner (the stand-in base model from stage 35),
# capped at a few steps: real metric lines, a real loss curve, a real model.tar.gz in the emulated S3.
set -euo pipefail
R="${FTOPS_DEMO_OUT:?}/rendered"
OUT="$FTOPS_DEMO_OUT/apply"
STEPS="${FTOPS_DEMO_TRAIN_STEPS:-12}"  # a smoke run: a few optimizer steps on the tiny stand-in model
mkdir -p "$OUT"

echo "-- plan: what the cloud already has"
ftops plan "$R" --env local
echo "-- dry run: uploads the datasets, source archive and Azure files; submits nothing"
ftops apply "$R" --env local --dry-run
echo "-- apply: Azure OpenAI jobs go to the emulator; the SageMaker job trains here (local runner, ${STEPS} steps)"
ftops apply "$R" --env local --local-max-steps "$STEPS"
echo "-- plan and apply again: nothing left to do, nothing submitted twice"
ftops plan "$R" --env local
ftops apply "$R" --env local --local-max-steps "$STEPS" --json \
  | python3 -c 'import json,sys; s=json.load(sys.stdin)["summary"]; assert "created" not in s, s; print("second apply:", s)'

echo "-- wait, with the live progress view"
ftops jobs wait --env local --dir "$R" --interval 1
ftops jobs list --env local --limit 5

job=helpdesk-gpt41mini
echo "-- events, results (CSV, loss plot, overfitting, best checkpoint)"
ftops jobs events "$job" --env local --dir "$R" --limit 8
ftops jobs results "$job" --env local --dir "$R" --out "$OUT/job-results/$job"   # a folder ftops makes and owns

echo "-- deploy the fine-tuned Azure model on the emulator"
ftops deploy "$job" --env local --dir "$R" --json > "$OUT/deploy-$job.json"
ftops deploy "$job" --env local --dir "$R"
echo "-- the same deployment as an ASO manifest for GitOps (written now that the fine-tuned model exists)"
ftops deploy "$job" --env local --dir "$R" --gitops "$OUT/gitops"

sm_job=helpdesk-qwen-lora
echo "-- the SageMaker job, trained by the local runner: status, events and the real loss curve"
ftops jobs status "$sm_job" --env local --dir "$R"
ftops jobs events "$sm_job" --env local --dir "$R" --limit 4
ftops jobs results "$sm_job" --env local --dir "$R" --out "$OUT/job-results/$sm_job"

echo "-- the GitOps pipeline (GitHub Actions) for dev -> staging -> prod"
ftops pipeline render --out "$OUT/github-workflow-ftops.yml"

echo
echo "artifacts:"
echo "  loss plot:       $OUT/job-results/$job/loss.png"
echo "  SageMaker loss:  $OUT/job-results/$sm_job/loss.png (real losses from the local run)"
echo "  metrics CSV:     $OUT/job-results/$job/metrics.csv"
echo "  results summary: $OUT/job-results/$job/summary.json"
echo "  deployment:      $OUT/deploy-$job.json"
echo "  workflow:        $OUT/github-workflow-ftops.yml"
