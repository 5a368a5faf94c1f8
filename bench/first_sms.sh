#!/usr/bin/env bash
# The missed-call -> first-SMS benchmark from one command (owner: perf):
#
#   bash bench/first_sms.sh RATE SECONDS [RATE SECONDS ...]
#
# Builds nmc and bench_first_sms (Release, build-perf/, -j2), starts a
# private PostgreSQL with scripts/pg.sh on its own port, and for each
# RATE/SECONDS pair: recreates the database (every run starts from the same
# schema), migrates, starts nmc with TWILIO_API_BASE pointing at the
# bench's embedded Twilio emulator, creates the tenant through the admin
# API, warms up (NMC_BENCH_WARMUP_CALLS calls, default 1000, at up to
# 500/s, then ANALYZE: a production database has statistics, and plans
# cached while the tables were empty can be far off; see bench/README.md),
# runs the open-loop generator with fresh callers and prints its JSON
# (latencies, lost/duplicated, achieved rate, nmc RSS now and at peak, CPU
# per call of nmc and of PostgreSQL) plus the settings used. Everything
# stops on exit.
#
# Environment: LOG_LEVEL (warn), DB_POOL_SIZE (nmc's default when unset),
# NMC_BENCH_TENANTS (1: every call rings one business; N spreads the calls
# over N tenants, as real traffic does),
# NMC_BENCH_PORT (18180), NMC_BENCH_EMU_PORT (18189), NMC_BENCH_PG_PORT
# (55450), NMC_BENCH_PG_DIR (/tmp/nmc-perf-pg), NMC_BENCH_SENDERS (the
# generator's default), NMC_BENCH_SKIP_BUILD=1, NMC_BENCH_NMC (another nmc
# binary, for A/B runs against an older build), NMC_BENCH_PERF=1 (wraps nmc
# in `perf record -g`, output in build-perf/perf-RATE.data), NMC_BENCH_PGSS=1
# (loads pg_stat_statements with track=all, resets it after the warm-up and
# writes the statements of the measured run, nested PL/pgSQL ones included,
# to build-perf/pgss-RATE.txt: calls, total and mean ms, WAL bytes, rows),
# NMC_BENCH_DB_ALONE=1 (after each run, with nmc stopped: the missed call's
# own statement alone from one libpq connection at the same rate, and a
# one-row durable INSERT, for min(SECONDS, 10) s each: bench/bench_db_stmt.c;
# the JSON gets "db_statement_alone" and "commit_floor"),
# NMC_BENCH_HUGEPAGES=1 (as root: reserves the 2 MiB pages PostgreSQL's
# shared memory needs, vm.nr_hugepages, and restarts the cluster so that it
# uses them, as deploy/postgresql.conf recommends for the database host; the
# previous reservation is restored on exit). The JSON's "pg_huge_pages" says
# whether the cluster's shared memory is in huge pages either way.
# NMC_BENCH_DIRTY_BG_BYTES=N (as root: vm.dirty_background_bytes=N for the
# run, restored on exit: the kernel writes dirty pages back once N bytes
# wait instead of in one burst 30 s after they were dirtied, see
# deploy/README.md; the JSON's "dirty_background_bytes" says what was set),
# NMC_BENCH_DUMP=1 (every call's due time and latencies, one line each, in
# build-perf/calls-RATE.txt: bench_first_sms --dump),
# NMC_BENCH_CALLGRIND=1 (runs nmc under valgrind's callgrind, counting from
# the measured run's start to the outbox's drain: the JSON gets
# "nmc_instructions_per_call", nmc's user-space instructions per call, libc
# and libraries included, a figure this machine's noise does not move; the
# profile is build-perf/callgrind-RATE.out.1, its top functions by inclusive
# cost build-perf/callgrind-RATE.txt. nmc runs ~50x slower under it: keep the
# rate low, e.g. 20 calls/s with NMC_BENCH_WARMUP_CALLS=200).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ] || [ $(($# % 2)) -ne 0 ]; then
  echo "usage: bash bench/first_sms.sh RATE SECONDS [RATE SECONDS ...]" >&2
  exit 2
fi
port=${NMC_BENCH_PORT:-18180}
emu=${NMC_BENCH_EMU_PORT:-18189}
pgport=${NMC_BENCH_PG_PORT:-55450}
pgdir=${NMC_BENCH_PG_DIR:-/tmp/nmc-perf-pg}
db=nmc_first_sms
build=build-perf
nmc=${NMC_BENCH_NMC:-$build/nmc}
log_level=${LOG_LEVEL:-warn}
token=bench-auth-token
admin=bench-admin-key
business=+15550001000
tenants=${NMC_BENCH_TENANTS:-1}

if [ "${NMC_BENCH_SKIP_BUILD:-0}" != 1 ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DNMC_SANITIZE=OFF >/dev/null
  cmake --build "$build" -j2 --target nmc bench_first_sms bench_db_stmt >/dev/null
fi
bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
bash scripts/pg.sh start "$pgdir" "$pgport" postgres >/dev/null
# Whether the postmaster's shared memory is mapped with 2 MiB pages.
pg_huge() {
  local pm
  pm=$(head -1 "$pgdir/data/postmaster.pid")
  if grep -q '^KernelPageSize: *2048 kB' "/proc/$pm/smaps" 2>/dev/null; then echo true; else echo false; fi
}
hp_saved=
dirty_saved=
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  bash scripts/pg.sh stop "$pgdir" "$pgport"
  if [ -n "$hp_saved" ]; then echo "$hp_saved" >/proc/sys/vm/nr_hugepages; fi
  if [ -n "$dirty_saved" ]; then # one of the two is 0: writing the other restores it
    if [ "${dirty_saved% *}" != 0 ]; then echo "${dirty_saved% *}" >/proc/sys/vm/dirty_background_bytes
    else echo "${dirty_saved#* }" >/proc/sys/vm/dirty_background_ratio; fi
  fi
}
trap cleanup EXIT
if [ -n "${NMC_BENCH_DIRTY_BG_BYTES:-}" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "bench/first_sms.sh: NMC_BENCH_DIRTY_BG_BYTES needs root (it sets vm.dirty_background_bytes)" >&2
    exit 2
  fi
  case "$NMC_BENCH_DIRTY_BG_BYTES" in
    '' | *[!0-9]*) echo "bench/first_sms.sh: NMC_BENCH_DIRTY_BG_BYTES must be a number of bytes" >&2; exit 2 ;;
  esac
  dirty_saved="$(cat /proc/sys/vm/dirty_background_bytes) $(cat /proc/sys/vm/dirty_background_ratio)"
  echo "$NMC_BENCH_DIRTY_BG_BYTES" >/proc/sys/vm/dirty_background_bytes
fi
if [ "${NMC_BENCH_HUGEPAGES:-0}" = 1 ] && [ "$(pg_huge)" != true ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "bench/first_sms.sh: NMC_BENCH_HUGEPAGES=1 needs root (it sets vm.nr_hugepages)" >&2
    exit 2
  fi
  bash scripts/pg.sh stop "$pgdir" "$pgport"
  need=$(runuser -u nmcpg -- "$bindir/postgres" -D "$pgdir/data" -C shared_memory_size_in_huge_pages)
  hp_saved=$(cat /proc/sys/vm/nr_hugepages)
  in_use=$(awk '/^HugePages_Total/ {t = $2} /^HugePages_Free/ {f = $2} END {print t - f}' /proc/meminfo)
  echo $((in_use + need)) >/proc/sys/vm/nr_hugepages
  bash scripts/pg.sh start "$pgdir" "$pgport" postgres >/dev/null
  if [ "$(pg_huge)" != true ]; then
    echo "bench/first_sms.sh: PostgreSQL does not use huge pages (the kernel gave $(cat /proc/sys/vm/nr_hugepages) of $((in_use + need)))" >&2
  fi
fi
# pg_stat_statements costs CPU on every statement, nested ones included:
# loaded only for NMC_BENCH_PGSS=1 runs, and unloaded again after one.
pg_restart() {
  if [ "$(id -u)" = 0 ]; then runuser -u nmcpg -- "$bindir/pg_ctl" -D "$pgdir/data" -w restart -l "$pgdir/server.log" >/dev/null
  else "$bindir/pg_ctl" -D "$pgdir/data" -w restart -l "$pgdir/server.log" >/dev/null; fi
}
pgss_line="shared_preload_libraries = 'pg_stat_statements'"
if [ "${NMC_BENCH_PGSS:-0}" = 1 ] && ! grep -q "^$pgss_line" "$pgdir/data/postgresql.conf"; then
  printf "%s\npg_stat_statements.track = all\n" "$pgss_line" >>"$pgdir/data/postgresql.conf"
  pg_restart
elif [ "${NMC_BENCH_PGSS:-0}" != 1 ] && grep -q "^$pgss_line" "$pgdir/data/postgresql.conf"; then
  sed -i -e "/^$pgss_line/d" -e '/^pg_stat_statements\.track/d' "$pgdir/data/postgresql.conf"
  pg_restart
fi

export DATABASE_URL=$(bash scripts/pg.sh url "$pgdir" "$pgport" "$db")
export PORT=$port PUBLIC_BASE_URL=http://127.0.0.1:$port LOG_LEVEL=$log_level
export TWILIO_API_BASE=http://127.0.0.1:$emu TWILIO_ACCOUNT_SID=ACbench00000000000000000000000000
export TWILIO_AUTH_TOKEN=$token ADMIN_API_KEY=$admin METRICS_BASIC_AUTH=bench:bench
export FIRST_SMS_REPEAT_WINDOW_MINUTES=60

# CPU ticks (utime + stime) of a process, and of our PostgreSQL cluster.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
pg_ticks() {
  local pm t=0 p
  pm=$(head -1 "$pgdir/data/postmaster.pid")
  for p in $pm $(pgrep -P "$pm"); do t=$((t + $(ticks "$p"))); done
  echo $t
}

# Outbox events not dispatched yet, counted in the database.
backlog_now() {
  "$bindir/psql" -h "$pgdir/sock" -p "$pgport" -U nmc -d "$db" -tAc \
    "SELECT count(*) FROM outbox_events WHERE dispatched_at IS NULL"
}

# The cluster's WAL so far: records, full-page images, bytes, and the write()
# and fsync calls that put it on disk (pg_stat_wal).
wal_now() {
  "$bindir/psql" -h "$pgdir/sock" -p "$pgport" -U nmc -d "$db" -tAF' ' -c \
    "SELECT wal_records, wal_fpi, wal_bytes, wal_write, wal_sync FROM pg_stat_wal"
}

run_one() {
  local rate=$1 secs=$2
  "$bindir/dropdb" -h "$pgdir/sock" -p "$pgport" -U nmc --if-exists "$db"
  "$bindir/createdb" -h "$pgdir/sock" -p "$pgport" -U nmc "$db"
  "$nmc" migrate up >/dev/null
  local wrap=()
  if [ "${NMC_BENCH_PERF:-0}" = 1 ]; then wrap=(perf record -g -o "$build/perf-$rate.data" --); fi
  if [ "${NMC_BENCH_CALLGRIND:-0}" = 1 ]; then
    rm -f "$build/callgrind-$rate.out"*
    wrap=(valgrind --tool=callgrind --callgrind-out-file="$build/callgrind-$rate.out" --)
  fi
  "${wrap[@]}" "$nmc" serve >"$build/bench-first-sms-$rate.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do
    curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.05
  done
  local k
  for ((k = 0; k < tenants; k++)); do
    curl -fsS -o /dev/null -X POST -H "X-Admin-API-Key: $admin" -H 'Content-Type: application/json' \
      -d "{\"name\":\"Bench Plumbing $k\",\"timezone\":\"UTC\",\"phone_numbers\":[\"+$((${business#+} + k))\"],\"compliance_status\":\"approved\"}" \
      "http://127.0.0.1:$port/v1/admin/tenants"
  done
  local npid=$pid warm=${NMC_BENCH_WARMUP_CALLS:-1000}
  if [ "$warm" -gt 0 ]; then
    local wrate=$((rate < 500 ? rate : 500))
    "$build/bench_first_sms" --port "$port" --emulator-port "$emu" --rate "$wrate" \
      --duration $(((warm + wrate - 1) / wrate)) --first-caller 9000000 --token "$token" --to "$business" --tenants "$tenants" >/dev/null
    "$bindir/psql" -h "$pgdir/sock" -p "$pgport" -U nmc -d "$db" -qc "VACUUM ANALYZE" >/dev/null
  fi
  if [ "${NMC_BENCH_PGSS:-0}" = 1 ]; then
    "$bindir/psql" -h "$pgdir/sock" -p "$pgport" -U nmc -d "$db" -qAtc \
      "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset()" >/dev/null
  fi
  if [ "${NMC_BENCH_PERF:-0}" = 1 ]; then npid=$(pgrep -P "$pid" -x nmc || echo "$pid"); fi
  # callgrind counts from here: start-up and warm-up are not the run's
  if [ "${NMC_BENCH_CALLGRIND:-0}" = 1 ]; then callgrind_control --zero "$npid" >/dev/null; fi
  local senders=()
  if [ -n "${NMC_BENCH_SENDERS:-}" ]; then senders=(--senders "$NMC_BENCH_SENDERS"); fi
  if [ "${NMC_BENCH_DUMP:-0}" = 1 ]; then senders+=(--dump "$build/calls-$rate.txt"); fi
  local out nmc0 pg0 nmc1 pg1 hz wal0 wal1
  hz=$(getconf CLK_TCK)
  wal0=$(wal_now)
  nmc0=$(ticks "$npid") pg0=$(pg_ticks)
  out=$("$build/bench_first_sms" --port "$port" --emulator-port "$emu" --rate "$rate" --duration "$secs" \
    --pid "$npid" --token "$token" --to "$business" --tenants "$tenants" "${senders[@]}")
  # Sustained means the whole pipeline keeps up, not only the first SMS:
  # the outbox backlog (events not yet dispatched: CallDetected,
  # ConversationStarted, FirstReplySent) when the generator stops, and how
  # long it takes to drain (CPU is measured until then).
  local backlog drain_ms=0 t0 left
  backlog=$(backlog_now)
  t0=$(date +%s%N)
  left=$backlog
  while [ "${left:-0}" != 0 ] && [ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 60000 ]; do
    sleep 0.05
    left=$(backlog_now)
  done
  drain_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  nmc1=$(ticks "$npid") pg1=$(pg_ticks)
  wal1=$(wal_now)
  local ir=""
  if [ "${NMC_BENCH_CALLGRIND:-0}" = 1 ]; then
    callgrind_control --dump "$npid" >/dev/null
    local dump
    dump=$(ls -t "$build/callgrind-$rate.out"* | head -1)
    ir=$(awk '/^summary:/ { print $2 }' "$dump")
    callgrind_annotate --inclusive=yes "$dump" 2>/dev/null | head -80 >"$build/callgrind-$rate.txt" || true
  fi
  if [ "${NMC_BENCH_PGSS:-0}" = 1 ]; then
    "$bindir/psql" -h "$pgdir/sock" -p "$pgport" -U nmc -d "$db" -P pager=off -c \
      "SELECT calls, round(total_exec_time::numeric, 1) AS total_ms, round(mean_exec_time::numeric, 3) AS mean_ms,
              wal_bytes, rows, toplevel, left(regexp_replace(query, '\s+', ' ', 'g'), 160) AS query
         FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
        ORDER BY total_exec_time DESC LIMIT 40" >"$build/pgss-$rate.txt"
  fi
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=
  local alone="" floor=""
  if [ "${NMC_BENCH_DB_ALONE:-0}" = 1 ]; then
    local tv n
    tv=$("$bindir/psql" -h "$pgdir/sock" -p "$pgport" -U nmc -d "$db" -tAc "SELECT id || ' ' || xmin FROM tenants LIMIT 1")
    n=$((rate * (secs < 10 ? secs : 10)))
    alone=$("$build/bench_db_stmt" --conninfo "$DATABASE_URL" --rate "$rate" --count "$n" \
      --tenant "${tv% *}" --tenant-version "${tv#* }")
    floor=$("$build/bench_db_stmt" --conninfo "$DATABASE_URL" --rate "$rate" --count "$n" --floor)
  fi
  local commit
  commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
  out=${out%\}}
  printf '%s,\n' "${out%$'\n'}"
  if [ -n "$alone" ]; then
    printf '  "db_statement_alone": %s,\n  "commit_floor": %s,\n' "$alone" "$floor"
  fi
  if [ -n "$ir" ]; then
    awk -v n=$((rate * secs)) -v ir="$ir" 'BEGIN { printf "  \"nmc_instructions_per_call\": %.0f,\n", ir / n }'
  fi
  printf '  "outbox_backlog_at_end": %s, "outbox_drain_ms": %s, "outbox_backlog_after_drain": %s,\n' \
    "${backlog:-0}" "$drain_ms" "${left:-0}"
  # CPU per call over the whole run (sending, draining): what a core buys
  awk -v n=$((rate * secs)) -v a=$((nmc1 - nmc0)) -v b=$((pg1 - pg0)) -v hz="$hz" 'BEGIN {
    printf "  \"nmc_cpu_ms_per_call\": %.3f, \"postgres_cpu_ms_per_call\": %.3f,\n", a * 1000 / hz / n, b * 1000 / hz / n }'
  # WAL per call over the same span: records, full-page images (a page's
  # first change after a checkpoint), bytes, writes and syncs (each sync is
  # a wait on the disk that a durable commit arriving meanwhile shares)
  echo "$wal0 $wal1" | awk -v n=$((rate * secs)) '{
    printf "  \"wal_per_call\": {\"records\": %.1f, \"fpi\": %.2f, \"bytes\": %.0f, \"writes\": %.2f, \"syncs\": %.2f},\n", ($6 - $1) / n, ($7 - $2) / n, ($8 - $3) / n, ($9 - $4) / n, ($10 - $5) / n }'
  printf '  "tenants": %d, "log_level": "%s", "db_pool_size": "%s", "pg_huge_pages": %s, "dirty_background_bytes": %s, "commit": "%s", "build": "Release", "load_avg_1m": %s\n}\n' \
    "$tenants" "$log_level" "${DB_POOL_SIZE:-default}" "$(pg_huge)" "$(cat /proc/sys/vm/dirty_background_bytes)" "$commit" "$(cut -d' ' -f1 /proc/loadavg)"
}

while [ $# -ge 2 ]; do
  run_one "$1" "$2"
  shift 2
done
