#!/usr/bin/env bash
# Installs, builds and runs NeverMissCall locally on its embedded default:
# a project-private PostgreSQL (under .local/, git-ignored), the provider
# emulator (nmc-fakes) and a demo tenant with number +15550001000.
# Ctrl-C stops everything. Set NMC_SKIP_INSTALL=1 to skip apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
if [ "${NMC_SKIP_INSTALL:-0}" != 1 ]; then bash scripts/install-deps.sh all; fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"

pgdir="$root/.local/pg"
if [ "$(id -u)" = 0 ]; then
  # PostgreSQL runs as the unprivileged user nmcpg; it needs to reach its folder.
  id nmcpg >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin nmcpg
  mkdir -p "$root/.local"
  if ! runuser -u nmcpg -- test -x "$root/.local"; then pgdir=/var/tmp/nmc-local-pg; fi
fi
pgport=${NMC_LOCAL_PG_PORT:-55433}
bash scripts/pg.sh start "$pgdir" "$pgport" nmc

export DATABASE_URL=$(bash scripts/pg.sh url "$pgdir" "$pgport" nmc)
export PORT=${PORT:-8080}
export PUBLIC_BASE_URL=${PUBLIC_BASE_URL:-http://localhost:$PORT}
export FAKES_PORT=${FAKES_PORT:-8090}
export TWILIO_API_BASE=http://127.0.0.1:$FAKES_PORT
export TWILIO_ACCOUNT_SID=${TWILIO_ACCOUNT_SID:-AC00000000000000000000000000000000}
export TWILIO_AUTH_TOKEN=${TWILIO_AUTH_TOKEN:-demo-auth-token}
export TWILIO_MESSAGING_SERVICE_SID=${TWILIO_MESSAGING_SERVICE_SID:-}
export ADMIN_API_KEY=${ADMIN_API_KEY:-demo-admin-key}
export METRICS_BASIC_AUTH=${METRICS_BASIC_AUTH:-metrics:metrics}
export LOG_LEVEL=${LOG_LEVEL:-info}

build/nmc migrate up
# What scripts/simulate-missed-call.sh needs to reach and sign for this run
# (each line only sets a variable the caller has not set).
cat > .local/demo.env <<ENV
: "\${PORT:=$PORT}"
: "\${PUBLIC_BASE_URL:=$PUBLIC_BASE_URL}"
: "\${TWILIO_AUTH_TOKEN:=$TWILIO_AUTH_TOKEN}"
: "\${FAKES_PORT:=$FAKES_PORT}"
ENV

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  bash scripts/pg.sh stop "$pgdir" "$pgport"
}
trap cleanup EXIT INT TERM

if [ -x build/nmc-fakes ]; then
  build/nmc-fakes --port "$FAKES_PORT" --twilio-auth-token "$TWILIO_AUTH_TOKEN" \
    --account-sid "$TWILIO_ACCOUNT_SID" --status-callbacks > .local/fakes.log 2>&1 &
  pids+=($!)
fi
build/nmc serve > >(tee -a .local/nmc.log) 2>&1 &
pids+=($!)

for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null || { echo "nmc did not become ready" >&2; exit 1; }

if ! curl -fsS -H "X-Admin-API-Key: $ADMIN_API_KEY" "http://127.0.0.1:$PORT/v1/admin/tenants" | grep -q '+15550001000'; then
  curl -fsS -X POST -H "X-Admin-API-Key: $ADMIN_API_KEY" -H 'Content-Type: application/json' \
    -d '{"name":"Demo Plumbing","timezone":"America/New_York","phone_numbers":["+15550001000"],"compliance_status":"approved"}' \
    "http://127.0.0.1:$PORT/v1/admin/tenants" > .local/demo-tenant.json
  echo "demo tenant created: $(cat .local/demo-tenant.json)"
fi
cat <<MSG

NeverMissCall is running on http://localhost:$PORT (emulator on :$FAKES_PORT).
  simulate a missed call:  bash scripts/simulate-missed-call.sh
  metrics:                 curl -u metrics:metrics http://localhost:$PORT/metrics
  admin:                   curl -H 'X-Admin-API-Key: $ADMIN_API_KEY' http://localhost:$PORT/v1/admin/tenants
Ctrl-C stops nmc, the emulator and PostgreSQL.
MSG
wait "${pids[-1]}"
