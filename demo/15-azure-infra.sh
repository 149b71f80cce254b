#!/usr/bin/env bash
# Stage 15: provision the local environment's Azure resources on the ARM emulator with the management SDKs:
# plan (everything to create), apply, plan again (no changes), and the outputs rendering reads. Before the data
# stage: apply makes the data container (on Azurite too), which no other ftops command creates.
set -euo pipefail
out="${FTOPS_DEMO_OUT:?}/azure-infra"
mkdir -p "$out"

echo "-- plan before apply"
ftops infra plan --cloud azure --env local --json > "$out/plan-before.json"
ftops infra plan --cloud azure --env local

echo "-- apply"
ftops infra apply --cloud azure --env local --yes

echo "-- plan after apply (no changes expected)"
ftops infra plan --cloud azure --env local --detailed-exitcode
ftops infra plan --cloud azure --env local --json > "$out/plan-after.json"

echo "-- outputs (environments/resolved/local.azure.json)"
ftops infra outputs --cloud azure --env local
