#!/usr/bin/env bash
# Stage 20: provision the local AWS stack on moto with the real CDK CLI (`cdk deploy`), then record and print
# the resolved values rendering will use (environments/resolved/local.aws.json).
set -euo pipefail
ftops infra deploy --env local --json > "$FTOPS_DEMO_OUT/aws-deploy.json"
ftops infra outputs --env local
ftops infra outputs --env local --json > "$FTOPS_DEMO_OUT/local.aws.resolved.json"
echo "resolved values: $FTOPS_DEMO_OUT/local.aws.resolved.json"
