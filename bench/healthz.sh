#!/usr/bin/env bash
# /healthz keep-alive throughput and latency percentiles with wrk, plus nmc's
# idle and loaded RSS and how long SIGTERM takes. Engineers run it by hand:
#   bash bench/healthz.sh [seconds=10] [connections=50]
# Prints one JSON object. Uses a Release build in build-bench/ and a private
# PostgreSQL on port 55440 (nmc needs a database to start).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-50}
port=${NMC_BENCH_PORT:-18080}
pgdir=/tmp/nmc-bench-pg
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-bench -j"$(nproc)" --target nmc >/dev/null
bash scripts/pg.sh start "$pgdir" 55440 nmc_bench >/dev/null
export DATABASE_URL=$(bash scripts/pg.sh url "$pgdir" 55440 nmc_bench)
build-bench/nmc migrate up >/dev/null
LOG_LEVEL=warn PORT=$port DB_POOL_SIZE=2 build-bench/nmc serve >/tmp/nmc-bench-healthz.log 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; bash scripts/pg.sh stop "$pgdir" 55440' EXIT
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.05; done
sleep 1
rss_idle=$(awk '/VmRSS/{print $2}' /proc/$pid/status)
out=$(wrk -t1 -c"$conns" -d"${secs}s" --latency "http://127.0.0.1:$port/healthz")
rss_load=$(awk '/VmRSS/{print $2}' /proc/$pid/status)
t0=$(date +%s%N)
kill -TERM $pid
wait $pid && code=0 || code=$?
t1=$(date +%s%N)
to_ms() { awk -v v="$1" 'BEGIN{ if (v ~ /us$/) {sub(/us$/,"",v); print v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v); print v+0} else if (v ~ /s$/) {sub(/s$/,"",v); print v*1000} else print v }'; }
p50=$(echo "$out" | awk '$1=="50%"{print $2}')
p90=$(echo "$out" | awk '$1=="90%"{print $2}')
p99=$(echo "$out" | awk '$1=="99%"{print $2}')
rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
errs=$(echo "$out" | awk '/Non-2xx|Socket errors/{print}' | tr '\n' ' ')
cat <<JSON
{"bench":"healthz","seconds":$secs,"connections":$conns,"requests_per_s":$rps,
 "latency_ms":{"p50":$(to_ms "$p50"),"p90":$(to_ms "$p90"),"p99":$(to_ms "$p99")},
 "rss_idle_kib":$rss_idle,"rss_loaded_kib":$rss_load,"sigterm_exit_code":$code,
 "sigterm_ms":$(( (t1 - t0) / 1000000 )),"errors":"$errs"}
JSON
