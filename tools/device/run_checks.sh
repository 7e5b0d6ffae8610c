#!/usr/bin/env bash
# The GPU checks and benchmarks of the cuda backend, run on the device through on_device.sh:
#   run(carry=["devcarry"], command="tools/device/on_device.sh 'tools/device/run_checks.sh all'")
# Modes: kernels (troupe_kernel_test + troupe_kernel_bench), check (troupe_cuda_check: cuda vs the cpu oracle on
# the tiny checkpoints and stories260K), stories (serve + bench on the default model), v2 (V2-Lite dummy: 200
# prompts of 1000 in / 100 out, issue 7's comparison with vLLM), conc (V2-Lite dummy, 1000 in / 1000 out at
# --max-concurrency 1, 16 and 64), smoke (R1 / V2-Lite layer timings), ab (tests/cuda/switch_ab.sh: the fast
# paths against the plain ones on R1 cut to 4 layers, FP8 and bf16), wgmma (the wgmma kernels: tests, bench rows,
# R1 prefill layer with them forced off / on), all.
# Logs land in $OUT.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/troupe-out}; mkdir -p "$OUT"
MODE=${1:-all}
has() { [[ $MODE == all || $MODE == *"$1"* ]]; }
wait_health() {  # port, seconds
  for _ in $(seq 1 "$2"); do curl -sf "localhost:$1/health" >/dev/null 2>&1 && return 0; sleep 1; done; return 1; }
# V2-Lite's shapes with the R1 tokenizer (its vocab raised to 129280 to match: slightly more lm_head work).
model_dir() {  # name -> a directory with config.json (+ tokenizer)
  local d=/tmp/troupe-models/$1; mkdir -p "$d"
  case $1 in
    v2lite) python3 - "$d" <<'PY'
import json, sys
c = json.load(open("tests/data/configs/deepseek-v2-lite/config.json")); c["vocab_size"] = 129280
json.dump(c, open(sys.argv[1] + "/config.json", "w"), indent=1)
PY
            cp tests/data/tokenizer/deepseek-r1/* "$d"/ ;;
    r1) cp tests/data/configs/deepseek-r1/config.json "$d"/ ;;
  esac
  echo "$d"
}
if has kernels; then
  troupe_kernel_test > "$OUT/kernel_test.log" 2>&1; echo "kernel tests rc=$?"; tail -3 "$OUT/kernel_test.log"
  troupe_kernel_bench > "$OUT/kernel_bench.log" 2>&1; echo "kernel bench rc=$?"
fi
if has wgmma; then  # the wgmma kernels' tests, bench rows, and the R1 prefill layer with each forced off / on
  troupe_kernel_test wgmma 2>&1 | tail -4
  troupe_kernel_bench mla_prefill 2>&1 | grep -E "attention"
  troupe_kernel_bench moe 2>&1 | grep -E "R1 fp8 \(256"
  d=$(model_dir r1)
  for v in "1 -1" "0 -1" "1 1" "1 -1" "0 -1" "1 1"; do set -- $v; echo "mla wgmma $1, moe wgmma $2: $(\
    TROUPE_MLA_PREFILL_WGMMA=$1 TROUPE_MOE_LT_WGMMA=$2 TROUPE_SMOKE_ROWS="prefill 4096" \
    troupe_cuda_check --smoke "$d" 4 5 2>&1 | grep -E "^ +prefill")"; done
fi
if has check; then
  timeout 120 troupe_cuda_check --root . > "$OUT/check.log" 2>&1; echo "check rc=$?"
  grep -E "^(PASS|FAIL|INFO|ALL|FAILED)" "$OUT/check.log"
fi
if has stories; then
  troupe serve --backend cuda --port 8001 > "$OUT/serve_stories.log" 2>&1 & pid=$!
  if wait_health 8001 90; then
    curl -s localhost:8001/v1/completions -H 'content-type: application/json' \
      -d '{"prompt": "Once upon a time", "max_tokens": 40, "temperature": 0}'; echo
    troupe bench --base-url http://localhost:8001 --num-prompts 200 --random-input-len 64 --random-output-len 64 \
      --ignore-eos > "$OUT/bench_stories.log" 2>&1; echo "bench rc=$?"
    grep -E "throughput|TTFT|TPOT|Successful|Benchmark duration" "$OUT/bench_stories.log"
  else echo "stories serve did not become healthy"; fi
  kill $pid; wait $pid 2>/dev/null
fi
if has v2; then
  m=$(model_dir v2lite)
  troupe serve --backend cuda --model "$m" --load-format dummy --max-model-len 4096 --port 8002 \
    > "$OUT/serve_v2.log" 2>&1 & pid=$!
  if wait_health 8002 240; then
    troupe bench --base-url http://localhost:8002 --model "$m" --num-prompts 200 --random-input-len 1000 \
      --random-output-len 100 --ignore-eos > "$OUT/bench_v2.log" 2>&1; echo "bench rc=$?"
    grep -E "throughput|TTFT|TPOT|Successful|Benchmark duration|Total" "$OUT/bench_v2.log"
  else echo "v2 serve did not become healthy"; tail -20 "$OUT/serve_v2.log"; fi
  kill $pid; wait $pid 2>/dev/null
fi
if has conc; then
  m=$(model_dir v2lite)
  troupe serve --backend cuda --model "$m" --load-format dummy --max-model-len 4096 --port 8003 \
    > "$OUT/serve_conc.log" 2>&1 & pid=$!
  if wait_health 8003 240; then
    # 4 rounds of requests at each concurrency (4 at concurrency 1): long enough for steady state, short
    # enough for the device budget.
    for c in 1 16 64; do
      n=$(( c == 1 ? 4 : 4 * c ))
      troupe bench --base-url http://localhost:8003 --model "$m" --num-prompts $n --max-concurrency $c \
        --random-input-len 1000 --random-output-len 1000 --ignore-eos > "$OUT/bench_conc$c.log" 2>&1
      echo "concurrency $c ($n prompts) rc=$?"
      grep -E "Output token throughput|Mean TTFT|Median TTFT|P99 TTFT|Mean TPOT|Median TPOT|P99 TPOT|Successful" \
        "$OUT/bench_conc$c.log"
    done
  else echo "conc serve did not become healthy"; tail -20 "$OUT/serve_conc.log"; fi
  kill $pid; wait $pid 2>/dev/null
fi
if has ab; then
  for d in fp8 bf16; do bash tests/cuda/switch_ab.sh "$d" 2>&1 | grep -v " info "; echo "switch_ab $d rc=${PIPESTATUS[0]}"; done
fi
if has smoke; then
  timeout 200 troupe_cuda_check --smoke "$(model_dir r1)" 4 5; echo "r1 smoke rc=$?"
  timeout 100 troupe_cuda_check --smoke "$(model_dir v2lite)" 2 3; echo "v2 smoke rc=$?"
fi
