#!/usr/bin/env bash
# The demo: every stage script under demo/ in order, against the `local` environment (the emulators).
# The emulators stay up afterwards so you can explore; `ftops local down` stops them.
set -euo pipefail
cd "$(dirname "$0")/.."
export FTOPS_DEMO_OUT="${FTOPS_DEMO_OUT:-$PWD/demo-out}"
mkdir -p "$FTOPS_DEMO_OUT"
for stage in demo/[0-9][0-9]-*.sh; do
  printf '\n== %s ==\n' "$(basename "$stage" .sh)"
  bash "$stage"
done
printf '\nDemo finished. Artifacts are under %s; the emulators are still running (ftops local down stops them).\n' "$FTOPS_DEMO_OUT"
