#!/usr/bin/env bash
# Stage 30: render both example job definitions (SageMaker LoRA, Azure OpenAI SFT) for local and prod, show
# that a re-render is byte-identical, and show what differs between local and prod as a review diff.
set -euo pipefail
OUT="${FTOPS_DEMO_OUT:?}/rendered"

ftops schema --check
ftops render --env local --env prod --out "$OUT"   # one run renders both (checked, then written per env)

echo "-- re-render: same inputs, same bytes, same names"
ftops diff --env local --against "$OUT"
ftops diff --env prod --against "$OUT"

echo "-- what prod changes compared with local (exit 1 means: they differ, as expected)"
set +e
ftops diff --env prod --against "$OUT" --against-env local
rc=$?
set -e
if [ "$rc" -ne 1 ]; then echo "expected local and prod renders to differ (exit 1), got $rc" >&2; exit 1; fi

echo "-- rendered files"
find "$OUT" -type f | sort
