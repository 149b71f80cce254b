#!/usr/bin/env bash
# Stage 45: a two-trial SageMaker hyperparameter tuning sweep (demo/sweep/helpdesk-qwen-sweep.yaml), in a fork of
# this project that holds only that definition (FTOPS_ROOT), against the same emulators and resolved values.
# moto takes the tuning job; both trials really train with the local runner (CPU, a few steps each), each
# checkpointing under its own training job name; `ftops jobs results` names the best one by eval_loss.
set -euo pipefail
export FTOPS_STATE_DIR="${FTOPS_STATE_DIR:-$PWD/.ftops}"   # the emulators and resolved values stages 00-40 used
FORK="${FTOPS_DEMO_OUT:?}/sweep-project"
OUT="$FTOPS_DEMO_OUT/sweep"
STEPS="${FTOPS_DEMO_TRAIN_STEPS:-12}"
STEPS=$(( STEPS < 4 ? STEPS : 4 ))   # per trial: a smoke run
rm -rf "$FORK" && mkdir -p "$FORK/definitions" "$FORK/datasets/it-helpdesk" "$OUT"
cp -r environments "$FORK/environments"
rm -rf "$FORK/environments/resolved"
ln -s "$PWD/templates" "$FORK/templates"
cp -r datasets/it-helpdesk/prepared "$FORK/datasets/it-helpdesk/prepared"
cp demo/sweep/helpdesk-qwen-sweep.yaml "$FORK/definitions/"
export FTOPS_ROOT="$FORK"
job=helpdesk-qwen-sweep

ftops render --env local --out "$OUT/rendered"
echo "-- plan and apply: one tuning job; its trials train here (local runner, ${STEPS} steps each)"
ftops plan "$OUT/rendered" --env local
ftops apply "$OUT/rendered" --env local --local-max-steps "$STEPS"
ftops jobs wait "$job" --env local --dir "$OUT/rendered" --interval 1
echo "-- the trials and the best training job by the objective metric"
ftops jobs events "$job" --env local --dir "$OUT/rendered"
ftops jobs results "$job" --env local --dir "$OUT/rendered" --out "$OUT/results" --json > "$OUT/results.json"
ftops jobs results "$job" --env local --dir "$OUT/rendered" --out "$OUT/results"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); t=r["trials"]; assert len(t)==2 and all(x["status"]=="Completed" for x in t), t; print("best:", r["best_training_job"]["training_job"])' "$OUT/results.json"
