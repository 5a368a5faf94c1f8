#!/usr/bin/env bash
# Lints what is not C: shell scripts parse, load-test scripts parse, and
# (when present) the OpenAPI document and Prometheus rules.
set -euo pipefail
cd "$(dirname "$0")/.."
for f in scripts/*.sh .ci/run bench/*.sh; do
  [ -f "$f" ] && bash -n "$f"
done
if [ -f bench/locustfile.py ]; then python3 -m py_compile bench/locustfile.py; fi
if [ -f bench/k6_missed_call.js ]; then node --check bench/k6_missed_call.js 2>/dev/null ||
  node --input-type=module --check < bench/k6_missed_call.js; fi
if [ -f deploy/prometheus/alerts.yml ]; then promtool check rules deploy/prometheus/alerts.yml >/dev/null; fi
if [ -f openapi.yaml ]; then bash scripts/lint-openapi.sh; fi
echo "check-tooling: ok"
