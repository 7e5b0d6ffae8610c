#!/usr/bin/env bash
# prompt_logprobs through the serve path on the GPU machine: the same completion request (prompt_logprobs 3,
# logprobs 2, greedy) to `troupe serve --backend cuda` and `--backend cpu` on stories260K, both with chunked
# prefill (max-num-batched-tokens 16) and max-num-seqs 4 (the cuda model's logits rows go in slices of 4);
# prints both responses and compares them with compare_logprobs_json.py: same JSON shape, the prompt tokens'
# logprobs within the bf16 bound. Run from the repo root with the troupe binaries on PATH (on_device.sh).
set -uo pipefail
OUT=${OUT:-/tmp/troupe-out}
mkdir -p "$OUT"
wait_health() { for _ in $(seq 1 60); do curl -sf "localhost:$1/health" >/dev/null 2>&1 && return 0; sleep 1; done; return 1; }
body='{"prompt": "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her dog",
       "max_tokens": 4, "temperature": 0, "logprobs": 2, "prompt_logprobs": 3}'
for backend in cuda cpu; do
  port=$([[ $backend == cuda ]] && echo 8021 || echo 8022)
  troupe serve --backend "$backend" --port "$port" --max-num-batched-tokens 16 --max-num-seqs 4 \
    > "$OUT/serve_plp_$backend.log" 2>&1 & pid=$!
  if wait_health "$port"; then
    curl -s "localhost:$port/v1/completions" -H 'content-type: application/json' -d "$body" > "$OUT/plp_$backend.json"
  else
    echo "$backend serve did not become healthy"; tail -5 "$OUT/serve_plp_$backend.log"
  fi
  kill "$pid"; wait "$pid" 2>/dev/null
done
grep -i "prompt_logprobs\|warn" "$OUT/serve_plp_cuda.log" | head -3
python3 "$(dirname "$0")/compare_logprobs_json.py" "$OUT/plp_cuda.json" "$OUT/plp_cpu.json"
