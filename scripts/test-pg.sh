#!/usr/bin/env bash
# ctest fixture: a throwaway cluster for the integration and e2e tests.
# "start" always begins from an empty database so runs are independent.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cmd=$1 dir=$2 port=$3
if [ "$cmd" = start ]; then
  "$here/pg.sh" stop "$dir" "$port" || true
  rm -rf "$dir"
  "$here/pg.sh" start "$dir" "$port" nmc_test
else
  "$here/pg.sh" stop "$dir" "$port"
  rm -rf "$dir"
fi
