#!/usr/bin/env bash
# Alternating A/B runs of the first-SMS bench (owner: perf):
#
#   bash bench/ab_first_sms.sh ROUNDS RATE SECONDS LABEL=NMC [LABEL=NMC ...]
#
# On this virtual machine the same build's first-SMS P95 at 50/s moves by
# more than 1 ms within minutes (bench/README.md), so one run of each build
# compares hours, not builds. This runs `bench/first_sms.sh RATE SECONDS`
# ROUNDS times for each nmc binary given, in turn, the order reversed every
# other round (A B, B A, A B, ...), prints one
# line per run and, at the end, per label: the median P50 and P95, how many
# runs met NMC_AB_TARGET_MS at P95 (default 3), and for every label after
# the first, in how many rounds its P95 was lower than the first label's.
# NMC is an nmc binary (build-perf/nmc for the tree's own build, which is
# rebuilt first) or an executable script that execs one, e.g. to set an
# environment variable for one side only. Every run's whole JSON goes to
# build-perf/ab-<start time>.jsonl. The environment reaches
# first_sms.sh (NMC_BENCH_HUGEPAGES, DB_POOL_SIZE, NMC_BENCH_DUMP, ...).
#
# Example (the tree's build against itself: the noise floor):
#   NMC_BENCH_HUGEPAGES=1 DB_POOL_SIZE=2 bash bench/ab_first_sms.sh 5 50 20 \
#     a=build-perf/nmc b=build-perf/nmc
set -euo pipefail
cd "$(dirname "$0")/.."
usage() {
  echo "usage: bash bench/ab_first_sms.sh ROUNDS RATE SECONDS LABEL=NMC [LABEL=NMC ...]" >&2
  exit 2
}
[ $# -ge 4 ] || usage
rounds=$1 rate=$2 secs=$3
shift 3
for n in "$rounds" "$rate" "$secs"; do
  case $n in '' | *[!0-9]* | 0) echo "ab_first_sms: ROUNDS, RATE and SECONDS must be positive integers, got '$n'" >&2; exit 2 ;; esac
done
target=${NMC_AB_TARGET_MS:-3}
case $target in '' | *[!0-9.]*) echo "ab_first_sms: NMC_AB_TARGET_MS must be a number, got '$target'" >&2; exit 2 ;; esac
labels=() bins=()
for spec in "$@"; do
  case $spec in
    *=*) ;;
    *) echo "ab_first_sms: '$spec' is not LABEL=NMC" >&2; exit 2 ;;
  esac
  label=${spec%%=*} bin=${spec#*=}
  case $label in '' | *[!A-Za-z0-9_.-]*) echo "ab_first_sms: label '$label' must be letters, digits, '_', '.' or '-'" >&2; exit 2 ;; esac
  labels+=("$label") bins+=("$bin")
done

build=build-perf
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DNMC_SANITIZE=OFF >/dev/null
cmake --build "$build" -j2 --target nmc bench_first_sms bench_db_stmt >/dev/null
for i in "${!bins[@]}"; do
  if [ ! -x "${bins[$i]}" ]; then
    echo "ab_first_sms: ${labels[$i]}: '${bins[$i]}' is not an executable file" >&2
    exit 2
  fi
done

jsonl=$build/ab-$(date -u +%Y%m%dT%H%M%SZ).jsonl
lines=$(mktemp)
trap 'rm -f "$lines"' EXIT
# field NAME JSON: the object or number after "NAME": in the bench's JSON
field() { grep -o "\"$1\": *[{][^}]*[}]\|\"$1\": *[0-9.]*" <<<"$2" | head -1 | sed "s/\"$1\": *//"; }

# The order turns every round (A B, B A, A B, ...): on this machine the run
# second in its pair was the slower one in 9 of 10 pairs whichever build it
# was (bench/README.md, 2026-12-08), so a fixed order favours the first label.
n=${#bins[@]}
for r in $(seq 1 "$rounds"); do
  for j in $(seq 0 $((n - 1))); do
    if [ $((r % 2)) = 1 ]; then i=$j; else i=$((n - 1 - j)); fi
    out=$(NMC_BENCH_SKIP_BUILD=1 NMC_BENCH_NMC="${bins[$i]}" bash bench/first_sms.sh "$rate" "$secs")
    tr -d '\n' <<<"$out" >>"$jsonl"
    echo >>"$jsonl"
    lat=$(field first_sms_latency_ms "$out")
    p50=$(field p50 "$lat") p95=$(field p95 "$lat") p99=$(field p99 "$lat")
    lost=$(field lost "$out") dup=$(field duplicated "$out")
    cn=$(field nmc_cpu_ms_per_call "$out") cp=$(field postgres_cpu_ms_per_call "$out")
    printf '%s round %d %-8s first SMS P50 %s P95 %s P99 %s ms, lost %s dup %s, CPU/call nmc %s PostgreSQL %s ms\n' \
      "$(date +%H:%M:%S)" "$r" "${labels[$i]}" "$p50" "$p95" "$p99" "$lost" "$dup" "$cn" "$cp"
    echo "$r ${labels[$i]} $p50 $p95" >>"$lines"
  done
done

echo "summary ($rounds rounds of $rate/s for $secs s; runs in $jsonl):"
for label in "${labels[@]}"; do
  awk -v l="$label" -v t="$target" -v first="${labels[0]}" '
    function median(a, n,   i, j, x) {
      for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    $2 == first { base[$1] = $4 }
    $2 == l { n++; p50[n] = $3; p95[n] = $4; mine[$1] = $4; if ($4 <= t) met++ }
    END {
      printf "  %-8s median P50 %.2f ms, median P95 %.2f ms, P95 <= %s ms in %d of %d runs", l, median(p50, n), median(p95, n), t, met, n
      if (l != first) {
        for (r in mine) if (r in base) { pairs++; if (mine[r] < base[r]) lower++ }
        printf ", P95 lower than %s in %d of %d rounds", first, lower, pairs
      }
      printf "\n"
    }' "$lines"
done
