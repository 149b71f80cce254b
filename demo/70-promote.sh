#!/usr/bin/env bash
# Stage 7: promote the evaluated model from `local` to a second emulated environment, `local-staging`, through
# its model record: train once (40-apply), evaluate (60-eval), approve in `local` (its own identity, on the
# stored evaluation), promote into local-staging (reads local's approved record: the same fine-tuned model id,
# recorded with the account that trained it), deploy the approved record. Nothing is retrained.
#
# The second environment lives in a throwaway fork under demo-out (environments/ copied, plus
# local-staging.yaml, definitions and datasets; templates and the CDK app linked), so the repository keeps its four
# environments; FTOPS_STATE_DIR keeps pointing at this checkout's .ftops (the emulators and local's records).
set -euo pipefail
job=helpdesk-gpt41mini
fork="${FTOPS_DEMO_OUT:?}/fork-with-local-staging"
evaluation="$FTOPS_DEMO_OUT/evaluation/evaluation.json"   # written by 60-eval.sh
rm -rf "$fork"
mkdir -p "$fork"
cp -R environments "$fork/environments"
sed -e 's/^name: local$/name: local-staging/' -e 's/ftops-local-rg/ftops-localstaging-rg/' \
    -e 's/ftopslocaldata/ftopslocalstaging/' environments/local.yaml > "$fork/environments/local-staging.yaml"
# local promotes into local-staging (as staging lists prod): refusals in local-staging name `--from local`.
awk '{ print } /^aws:$/ { print "  promotion_targets: [local-staging]" }' environments/local.yaml \
    > "$fork/environments/local.yaml"
# Copied, not linked: datasets and definitions must lie inside the project ftops renders (a link out is refused).
cp -R definitions datasets "$fork/"
ln -s "$PWD/templates" "$fork/templates"
for part in app.py cdk.json node_modules; do ln -s "$PWD/$part" "$fork/$part"; done   # `ftops infra deploy`
export FTOPS_STATE_DIR="${FTOPS_STATE_DIR:-$PWD/.ftops}" FTOPS_ROOT="$fork"

echo "-- provision local-staging as any environment: its AWS stack on moto (ftops creates no bucket on the fly:"
echo "   its model records live in the stack's artifacts bucket), its Azure OpenAI account on the emulator"
ftops infra deploy --env local-staging > /dev/null
ftops infra apply --cloud azure --env local-staging --yes > /dev/null

echo "-- nothing was promoted yet: local-staging serves nothing (exit 1 expected)"
ftops render --env local-staging --job "$job" --out "$fork/rendered" > /dev/null
if ftops deploy "$job" --env local-staging --dir "$fork/rendered"; then
  echo "deploy should have refused" >&2
  exit 1
fi

echo "-- approve in local: reads the stored evaluation (offline), then approves the record there"
ftops models approve "$job" --env local --no-judge --evaluation "$evaluation"

echo "-- promote into local-staging: reads local's approved record (writes nothing there), records the model here"
ftops promote "$job" --from local --to local-staging

echo "-- deploy the approved record in local-staging: the same fine-tuned model, its source account named"
ftops deploy "$job" --env local-staging --dir "$fork/rendered"

echo "-- the records: approved in local, promoted and serving in local-staging"
ftops models show "$job" --env local
ftops models show "$job" --env local-staging
ftops models show "$job" --env local-staging --json > "$FTOPS_DEMO_OUT/model-record-local-staging.json"
