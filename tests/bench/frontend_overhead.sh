#!/usr/bin/env bash
# The frontend's overhead per streamed token (docs/BENCHMARKS.md, "Frontend: 1000 concurrent streams"):
# `troupe serve` on the sim backend, `troupe bench` with 1000 streams in flight on loopback, then SIGTERM,
# which makes the server log its per-token histograms. Repeats the run REPEAT times and prints, per run,
# the histogram line, the bench's request counts and throughput, the server's peak RSS and the load average.
#
#   tests/bench/frontend_overhead.sh [TROUPE_BINARY]          (default: build/troupe)
# Environment: REPEAT (3), PORT (18201), NUM_PROMPTS (3000), CONCURRENCY (1000), HTTP_THREADS (2),
# SIM_STEP_US (2000), EXTRA_SERVE_ARGS ("").
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TROUPE=${1:-$ROOT/build/troupe}
REPEAT=${REPEAT:-3}
PORT=${PORT:-18201}
NUM_PROMPTS=${NUM_PROMPTS:-3000}
CONCURRENCY=${CONCURRENCY:-1000}
HTTP_THREADS=${HTTP_THREADS:-2}
SIM_STEP_US=${SIM_STEP_US:-2000}
LOG=$(mktemp -d)
trap 'rm -rf "$LOG"' EXIT

for run in $(seq 1 "$REPEAT"); do
  : > "$LOG/serve.log"
  # shellcheck disable=SC2086
  "$TROUPE" serve --backend sim --port "$PORT" --host 127.0.0.1 --max-num-seqs 1024 --sim-step-us "$SIM_STEP_US" \
    --max-model-len 2048 --http-threads "$HTTP_THREADS" ${EXTRA_SERVE_ARGS:-} > "$LOG/serve.log" 2>&1 &
  server=$!
  for _ in $(seq 1 300); do
    grep -q "troupe: serving" "$LOG/serve.log" && break
    kill -0 $server 2>/dev/null || { cat "$LOG/serve.log" >&2; exit 1; }
    sleep 0.1
  done
  peak=0
  ( while kill -0 $server 2>/dev/null; do
      rss=$(awk '/VmRSS/ {print $2}' /proc/$server/status 2>/dev/null || echo 0)
      echo "${rss:-0}"; sleep 1
    done ) > "$LOG/rss" &
  sampler=$!
  "$TROUPE" bench --host 127.0.0.1 --port "$PORT" --num-prompts "$NUM_PROMPTS" --max-concurrency "$CONCURRENCY" \
    --random-input-len 100 --random-output-len 200 --ignore-eos --disable-tqdm > "$LOG/bench.out" 2>&1
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  kill -TERM $server
  wait $server || true
  wait $sampler 2>/dev/null || true
  peak=$(sort -n "$LOG/rss" | tail -1)
  echo "== run $run: load average $load, server peak RSS $((peak / 1024)) MB"
  grep -E "Successful requests|Failed requests|Output token throughput|client CPU" "$LOG/bench.out" || cat "$LOG/bench.out"
  grep -oE "(frontend per streamed token|server process CPU).*" "$LOG/serve.log" || tail -5 "$LOG/serve.log"
done
