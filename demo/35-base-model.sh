#!/usr/bin/env bash
# Stage 35: seed the `local` artifacts bucket with a tiny stand-in base model where the SageMaker job's `model`
# channel reads (base_model.s3_uri), so stage 40's local runner really trains. Nothing is downloaded: a random-weight
# tiny Llama with a tokenizer trained on the prepared help-desk data; its answers mean nothing, its losses are real.
set -euo pipefail

ftops local seed-model --env local
echo "-- again: the model is already there, nothing is uploaded"
ftops local seed-model --env local --json \
  | python3 -c 'import json,sys; m=json.load(sys.stdin)["models"]; assert all(x["state"] == "present" for x in m), m; print("second seed:", [x["state"] for x in m])'
