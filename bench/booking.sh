#!/usr/bin/env bash
# The booking / availability benchmark from one command (owner: sched):
#
#   bash bench/booking.sh [RATE] [SECONDS] [AVAIL_RATE]     # defaults 200 10 100
#
# Builds nmc and bench_booking (Release, build-sched-bench/, -j2), starts a
# private PostgreSQL (scripts/pg.sh) on its own port, recreates the
# database, migrates, starts nmc, runs the open-loop generator (bookings at
# RATE/s = hold + booking each, 7-day availability searches at
# AVAIL_RATE/s), prints its JSON plus nmc's own booking_post_p95_ms, and
# stops everything. Environment: LOG_LEVEL (warn), DB_POOL_SIZE (8),
# NMC_BENCH_PORT (18190), NMC_BENCH_PG_PORT (55460),
# NMC_BENCH_PG_DIR (/tmp/nmc-sched-bench-pg), NMC_BENCH_SKIP_BUILD=1.
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-200} secs=${2:-10} arate=${3:-100}
port=${NMC_BENCH_PORT:-18190}
pgport=${NMC_BENCH_PG_PORT:-55460}
pgdir=${NMC_BENCH_PG_DIR:-/tmp/nmc-sched-bench-pg}
build=build-sched-bench
db=nmc_booking
if [ "${NMC_BENCH_SKIP_BUILD:-0}" != 1 ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DNMC_SANITIZE=OFF >/dev/null
  cmake --build "$build" -j2 --target nmc bench_booking >/dev/null
fi
bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
bash scripts/pg.sh start "$pgdir" "$pgport" postgres >/dev/null
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  bash scripts/pg.sh stop "$pgdir" "$pgport"
}
trap cleanup EXIT
"$bindir/dropdb" -h "$pgdir/sock" -p "$pgport" -U nmc --if-exists "$db"
"$bindir/createdb" -h "$pgdir/sock" -p "$pgport" -U nmc "$db"
export DATABASE_URL=$(bash scripts/pg.sh url "$pgdir" "$pgport" "$db")
export PORT=$port LOG_LEVEL=${LOG_LEVEL:-warn} ADMIN_API_KEY=bench-admin-key METRICS_BASIC_AUTH=bench:bench
export DB_POOL_SIZE=${DB_POOL_SIZE:-8} BIND_ADDR=127.0.0.1
"$build/nmc" migrate up >/dev/null
"$build/nmc" serve >"$build/bench-nmc.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
"$build/bench_booking" --port "$port" --admin-key bench-admin-key --rate "$rate" --duration "$secs" \
  --avail-rate "$arate"
echo "server: $(curl -s -u bench:bench "http://127.0.0.1:$port/metrics" | grep -E '^booking_post_p95_ms ')"
