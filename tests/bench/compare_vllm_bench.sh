#!/usr/bin/env bash
# Runs vLLM's own serving benchmark (vllm/benchmarks/serve.py from the vllm wheel on PyPI, unmodified, with
# the stub modules of tests/bench/vllm_stubs for the vllm imports it does not need) and `troupe bench` with
# the same flags against one `troupe serve` (sim backend), and checks that request throughput, output
# token throughput and mean TTFT/TPOT agree within 5%.
#
#   tests/bench/compare_vllm_bench.sh [BUILD_DIR]      (default: build)
# Environment: VLLM_VERSION (0.33.0), WORK (/tmp/troupe_vllm_compare), NUM_PROMPTS (200), CONCURRENCY (32),
# INPUT_LEN / OUTPUT_LEN (100 / 100), SIM_STEP_US (4000), TOLERANCE (0.05).
# Needs python3 with numpy, tqdm, aiohttp, transformers and tokenizers; pip for the first download.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
TROUPE=$BUILD/troupe
WORK=${WORK:-/tmp/troupe_vllm_compare}
VLLM_VERSION=${VLLM_VERSION:-0.33.0}
NUM_PROMPTS=${NUM_PROMPTS:-200}
CONCURRENCY=${CONCURRENCY:-32}
INPUT_LEN=${INPUT_LEN:-100}
OUTPUT_LEN=${OUTPUT_LEN:-100}
SIM_STEP_US=${SIM_STEP_US:-4000}
TOLERANCE=${TOLERANCE:-0.05}
mkdir -p "$WORK"

# vLLM's benchmark sources, from the wheel (the sdist needs a CUDA build to unpack its metadata).
if [ ! -f "$WORK/src/vllm/benchmarks/serve.py" ]; then
  if ! ls "$WORK"/wheel/vllm-"$VLLM_VERSION"-*.whl >/dev/null 2>&1; then
    python3 -m pip download --no-deps --only-binary :all: "vllm==$VLLM_VERSION" -d "$WORK/wheel"
  fi
  python3 - "$(ls "$WORK"/wheel/vllm-"$VLLM_VERSION"-*.whl | head -1)" "$WORK/whl" <<'PY'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
z.extractall(sys.argv[2], [n for n in z.namelist() if n.startswith("vllm/benchmarks/")])
PY
  mkdir -p "$WORK/src/vllm" && cp -r "$WORK/whl/vllm/benchmarks" "$WORK/src/vllm/" && rm -rf "$WORK/whl"
fi
rm -rf "$WORK/pkgs" && mkdir -p "$WORK/pkgs"
cp -r "$ROOT/tests/bench/vllm_stubs/." "$WORK/pkgs/"
cp -r "$WORK/src/vllm/benchmarks" "$WORK/pkgs/vllm/"
python3 -c 'import aiohttp, numpy, tqdm, transformers, tokenizers' 2>/dev/null ||
  { echo "compare_vllm_bench: needs python3 packages aiohttp numpy tqdm transformers tokenizers" >&2; exit 2; }

# The server: sim backend, fixed step cost, so both clients see the same engine.
"$TROUPE" serve --port 0 --host 127.0.0.1 --log-level warn --backend sim --sim-step-us "$SIM_STEP_US" \
  > "$WORK/serve.log" 2>&1 &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  grep -q "troupe: serving" "$WORK/serve.log" && break
  kill -0 $SERVER 2>/dev/null || { cat "$WORK/serve.log" >&2; exit 1; }
  sleep 0.1
done
URL=$(grep -o 'http://127.0.0.1:[0-9]*' "$WORK/serve.log" | head -1)
MODEL=$(python3 -c 'import json,sys,urllib.request; print(json.load(urllib.request.urlopen(sys.argv[1]+"/v1/models"))["data"][0]["id"])' "$URL")
ROOTDIR=$(python3 -c 'import json,sys,urllib.request; print(json.load(urllib.request.urlopen(sys.argv[1]+"/v1/models"))["data"][0].get("root") or "")' "$URL")
# The same tokenizer for both clients: the model's own when the server has one, else one token per
# printable character (what the sim's byte-level vocabulary counts, and what troupe bench does without one).
if [ -n "$ROOTDIR" ] && [ -f "$ROOTDIR/tokenizer.json" ]; then
  TOK="$ROOTDIR"; TROUPE_TOK=(--tokenizer "$ROOTDIR")
else
  TOK="$WORK/chartok"; TROUPE_TOK=()
  python3 "$WORK/pkgs/make_char_tokenizer.py" "$TOK"
fi
COMMON=(--base-url "$URL" --model "$MODEL" --dataset-name random --num-prompts "$NUM_PROMPTS"
        --random-input-len "$INPUT_LEN" --random-output-len "$OUTPUT_LEN" --max-concurrency "$CONCURRENCY"
        --ignore-eos --percentile-metrics ttft,tpot,itl,e2el --save-result --save-detailed)

echo "== vLLM $VLLM_VERSION benchmarks/serve.py"
(cd "$WORK/pkgs" && python3 run_vllm_bench.py --backend openai "${COMMON[@]}" --tokenizer "$TOK" \
  --result-filename "$WORK/vllm.json") 2>&1 | grep -v "^tip:" | tee "$WORK/vllm.out"
echo "== troupe bench"
"$TROUPE" bench --backend openai "${COMMON[@]}" "${TROUPE_TOK[@]}" --result-filename "$WORK/troupe.json" --disable-tqdm \
  | tee "$WORK/troupe.out"

python3 - "$WORK/vllm.json" "$WORK/troupe.json" "$TOLERANCE" <<'PY'
import json, sys
v, t, tol = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), float(sys.argv[3])
keys = ["completed", "total_input_tokens", "total_output_tokens", "request_throughput", "output_throughput",
        "mean_ttft_ms", "median_ttft_ms", "p99_ttft_ms", "mean_tpot_ms", "mean_itl_ms", "mean_e2el_ms"]
checked = {"request_throughput", "output_throughput", "mean_ttft_ms", "mean_tpot_ms"}
bad = []
print(f"{'metric':<24}{'vllm':>14}{'troupe':>14}{'diff':>9}")
for k in keys:
    a, b = float(v[k]), float(t[k])
    d = (b - a) / a if a else 0.0
    flag = "  <-- over" if k in checked and abs(d) > tol else ""
    print(f"{k:<24}{a:>14.3f}{b:>14.3f}{d*100:>8.1f}%{flag}")
    if flag:
        bad.append(k)
# Both clients start the clock before sending and stop it at the first chunk with a choice (see
# docs/BENCHMARKS.md); what is left between them is each client's own latency. The E2EL gap carries the
# same start-up part, so it is printed beside the TTFT gap.
dt, de = float(t["mean_ttft_ms"]) - float(v["mean_ttft_ms"]), float(t["mean_e2el_ms"]) - float(v["mean_e2el_ms"])
print(f"troupe - vllm: mean TTFT {dt:+.2f} ms, mean E2EL {de:+.2f} ms")
if "ttfts" in v and "ttfts" in t:
    n = min(32, len(v["ttfts"]), len(t["ttfts"]))
    for name, d in (("vllm", v), ("troupe", t)):
        first, rest = d["ttfts"][:n], d["ttfts"][n:]
        print(f"{name}: mean TTFT of the first {n} requests {1000*sum(first)/max(1,len(first)):.2f} ms, "
              f"of the rest {1000*sum(rest)/max(1,len(rest)):.2f} ms")
missing = [k for k in v if k not in t]
print("keys of vLLM's result missing from troupe's:", missing or "none")
sys.exit(1 if bad or missing or v["completed"] != t["completed"] else 0)
PY
