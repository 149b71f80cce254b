#!/usr/bin/env bash
# Stage 20: the data stage on the sample IT-helpdesk dataset: validate, prepare, estimate, upload (twice).
set -euo pipefail
DATA=datasets/it-helpdesk
OUT="$FTOPS_DEMO_OUT/it-helpdesk"

ftops data validate "$DATA/support-chat.jsonl"
ftops data prepare "$DATA/support-chat.jsonl" --out "$OUT" --group-by intent
# Same input and seed: the same bytes as the prepared copy committed for the job definitions.
for split in train validation test; do cmp "$OUT/$split.jsonl" "$DATA/prepared/$split.jsonl"; done
echo "prepared splits are byte-identical to $DATA/prepared/"

ftops data estimate "$OUT" --model gpt-4.1-mini
ftops data estimate "$OUT" --provider sagemaker --instance ml.g5.2xlarge --spot

ftops data upload "$OUT" --env local
echo "uploading again: content-addressed, so nothing is transferred"
ftops data upload "$OUT" --env local
ftops data upload "$OUT" --env local --json \
  | python -c 'import json, sys; sent = json.load(sys.stdin)["transferred"]; assert sent == 0, sent; print("second upload sent 0 bytes")'
