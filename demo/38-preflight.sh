#!/usr/bin/env bash
# Stage 38: preflight before the first apply: identity, permissions, quotas and capacity, the deployed stack and
# buckets, Azure models/quota/network and costs, read-only, for the rendered `local` jobs. Exit 1 would stop the demo.
# On the emulators, quotas come from `aws.quotas` in environments/local.yaml and permission rows say why they
# are not simulated (moto has no iam:SimulatePrincipalPolicy, the emulator no ARM permissions API).
set -euo pipefail
R="${FTOPS_DEMO_OUT:?}/rendered"

ftops preflight "$R" --env local
ftops preflight "$R" --env local --json > "$FTOPS_DEMO_OUT/preflight-local.json"
python3 - "$FTOPS_DEMO_OUT/preflight-local.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
sources = sorted({row["source"] for row in report["checks"]})
print("preflight sources:", "; ".join(sources))
assert not report["blocked"], report["summary"]
PY
