#!/usr/bin/env bash
# Lints openapi.yaml with Redocly CLI, installed from npm into .tooling/
# (git-ignored) on first use. Errors fail; warnings are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
tool=.tooling/node_modules/.bin/redocly
if [ ! -x "$tool" ]; then
  mkdir -p .tooling
  (cd .tooling && npm install --no-audit --no-fund --loglevel=error --prefix . @redocly/cli@2.77.0 >/dev/null)
fi
"$tool" lint --format=stylish openapi.yaml
