#!/usr/bin/env bash
# HTTP load benchmark (wrk on 127.0.0.1): track similarity on a 10k-track, 768-d index, against the
# trivial /health/live route measured the same way in the same run (the server's and wrk's own ceiling).
#   1. the default server: neighbour lists precomputed at load, answers cached per index version
#   2. --cache 0: every request ranks from its neighbour list and serialises a fresh answer
#   3. --cache 0 --neighbours 0: every request an exact SIMD scan over the 10k vectors
# Usage: bench/bench_server.sh [TRACKS=10000] [SECONDS=10] [CONNECTIONS=64]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000} secs=${2:-10} conns=${3:-64}
command -v wrk >/dev/null || { echo "wrk is missing: run scripts/setup" >&2; exit 1; }
scripts/build release mess make_track_index >/dev/null
work=bench-data/server
rm -rf "$work" && mkdir -p "$work"
build/bench/make_track_index "$work/indices" "$n" 768 >/dev/null
export MESS_BENCH_TRACKS=$n OMP_WAIT_POLICY=passive
run() {  # label, server flags, path or script
  local label=$1 flags=$2 target=$3 port=18931
  build/apps/mess/mess --log-level warn serve --index "$work/indices" --port $port $flags > "$work/serve.log" 2>&1 &
  local pid=$!
  for _ in $(seq 600); do curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null && break; sleep 0.1; done
  if [[ $target == *.lua ]]; then
    wrk -t2 -c"$conns" -d"${secs}s" -s "$target" "http://127.0.0.1:$port" >/dev/null  # warm-up (fills the cache)
    out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$target" "http://127.0.0.1:$port")
  else
    out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency "http://127.0.0.1:$port$target")
  fi
  kill $pid; wait $pid 2>/dev/null || true
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out"); p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errors=$(grep -E "Non-2xx|Socket errors" <<<"$out" | tr '\n' ' ' || true)
  printf '| %-44s | %10s | %8s | %8s | %s\n' "$label" "$rps" "$p50" "$p99" "${errors:-0 errors}"
  last_rps=$rps
}
echo "wrk -t2 -c$conns -d${secs}s, 127.0.0.1, $(nproc) cores shared by server and wrk; $n tracks × 768 dims (Flat)"
printf '| %-44s | %10s | %8s | %8s | %s\n' "route" "req/s" "p50" "p99" "errors"
run "GET /health/live (reference)" "" "/health/live"; ref=$last_rps
run "similar k=10: lists + answer cache (default)" "--cache 20000" bench/similar.lua; warm=$last_rps
run "similar k=10: lists, no answer cache" "--cache 0" bench/similar.lua; lists=$last_rps
run "similar k=10: exact scan per request" "--cache 0 --neighbours 0" bench/similar.lua; scan=$last_rps
awk -v r="$ref" -v w="$warm" -v l="$lists" -v s="$scan" \
    'BEGIN { printf "ratios to the reference: default %.2f, lists without cache %.2f, scan %.2f\n", w / r, l / r, s / r }'
