#!/usr/bin/env bash
# The demo: every stage script under demo/ in order, against the `local` environment (the emulators).
set -euo pipefail
cd "$(dirname "$0")/.."
export FTOPS_DEMO_OUT="${FTOPS_DEMO_OUT:-$PWD/demo-out}"
mkdir -p "$FTOPS_DEMO_OUT"
for stage in demo/[0-9][0-9]-*.sh; do
  printf '\n\033[1m== %s ==\033[0m\n' "$(basename "$stage" .sh)"
  bash "$stage"
done
