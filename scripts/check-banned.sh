#!/usr/bin/env bash
# Fails when project C code calls a banned function (conventions 13).
set -euo pipefail
cd "$(dirname "$0")/.."
pattern='\b(sprintf|vsprintf|strcpy|strcat|strtok|atoi|atol|gets)[[:space:]]*\('
hits=$(grep -rnE "$pattern" --include='*.c' --include='*.h' runtime http db providers actors cmd bench tests | grep -vE '(snprintf|vsnprintf)' || true)
if [ -n "$hits" ]; then
  echo "banned functions used (use snprintf, nmc_strlcpy, nmc_parse_i64):" >&2
  echo "$hits" >&2
  exit 1
fi
echo "check-banned: ok"
