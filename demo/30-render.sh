#!/usr/bin/env bash
# Stage 30: render both example job definitions (SageMaker LoRA, Azure OpenAI SFT) for local and staging, show
# that a re-render is byte-identical, and show what differs between local and staging as a review diff.
# prod renders only from its deployed values (key ARN, VPC subnets): without environments/resolved/prod.aws.json
# it refuses with one line, shown here.
set -euo pipefail
OUT="${FTOPS_DEMO_OUT:?}/rendered"

ftops schema --check
ftops render --env local --env staging --out "$OUT"   # one run renders both (checked, then written per env)

echo "-- re-render: same inputs, same bytes, same names"
ftops diff --env local --against "$OUT"
ftops diff --env staging --against "$OUT"

echo "-- what staging changes compared with local (exit 1 means: they differ, as expected)"
set +e
ftops diff --env staging --against "$OUT" --against-env local
rc=$?
set -e
if [ "$rc" -ne 1 ]; then echo "expected local and staging renders to differ (exit 1), got $rc" >&2; exit 1; fi

if [ ! -f environments/resolved/prod.aws.json ]; then
  echo "-- prod before its stack is deployed: refused (production jobs run in the VPC the stack creates)"
  set +e
  refused=$(ftops render --env prod --out "$FTOPS_DEMO_OUT/rendered-prod" 2>&1)
  rc=$?
  set -e
  echo "$refused"
  if [ "$rc" -ne 1 ] || [[ "$refused" != *"ftops infra outputs --env prod"* ]]; then
    echo "expected prod to be refused with the outputs hint (exit 1), got $rc" >&2; exit 1
  fi
fi

echo "-- rendered files"
find "$OUT" -type f | sort
