#!/usr/bin/env bash
# Do the fast paths change the numbers? switch_ab.sh fp8|bf16: DeepSeek-R1 cut to 4 layers (3 dense + 1 MoE; dummy
# weights filled per tensor name, so every run holds the same weights) served once per variant: as shipped ("fast"),
# with every fast path off ("plain": TROUPE_FUSE_QKV_A=0, q_a / kv_a as two GEMMs; TROUPE_SHARED_MERGE_TOKENS=0,
# the shared expert as its own MLP; TROUPE_MOE_LT=0, the grouped expert kernels for prefill;
# TROUPE_MLA_PREFILL_MIN=0, the absorbed MLA kernel for prefill; TROUPE_MOE_GEMV_TOKENS=0, the tiled expert
# kernels for single-token decode; TROUPE_GEMV_TOKENS=0, the GEMMs for decode projections; TROUPE_MLA_ABSORB=0, the
# batched W_UK / W_UV GEMMs with their own q_pe and split-merge launches; TROUPE_MLA_QB_ABSORB=0, q_b's GEMV apart
# from W_UK's at one decode token; TROUPE_FLAT_RESIDUAL=0, o_proj and the dense down projection of one decode token
# quantized and through the small-m GEMM; TROUPE_DENSE_GATE_UP_GEMV=0, the dense MLP's gate/up of one decode token
# as a GEMV and silu_mul; TROUPE_MOE_GATE_UP_FLAT=0, the expert gate/up GEMV of one decode token over 8-warp blocks
# instead of one block per SM), and with each one off alone (the
# decode-only paths change no prompt row). Two more switch a choice inside a fast path: "no_mla_wgmma"
# (TROUPE_MLA_PREFILL_WGMMA=0), the non-absorbed MLA prefill on mma.sync instead of wgmma; "moe_wgmma"
# (TROUPE_MOE_LT_WGMMA=1), the grouped wgmma expert GEMMs at any rows per expert (the prompt below has ~34, where
# the default is one cuBLASLt GEMM per expert). The tiny FP8
# checkpoints of troupe_cuda_check are too narrow for these paths (they need 128-multiple widths), so this is
# their check. Same request to all: a ~1100-token prompt (the non-absorbed MLA prefill and, at ~34 rows per used
# expert, the cuBLASLt MoE path) with prompt_logprobs, then greedy decode steps at batch 1 (fused q_a|kv_a, the
# shared expert inside moe_experts) with logprobs. switch_ab.py compares each with "plain", against the drift
# between two correct runs (the floors below). Run from the repo root with the troupe binaries on PATH
# (on_device.sh).
set -uo pipefail
OUT=${OUT:-/tmp/troupe-out}
mkdir -p "$OUT"
here=$(dirname "$0")
dtype=${1:-fp8}  # fp8: R1 as published; bf16: its quantization_config dropped (bf16 dummy weights, no FP8 noise)
m=/tmp/troupe-models/r1-4-$dtype
mkdir -p "$m"
python3 - "$m" "$dtype" <<'PY'
import json, sys
c = json.load(open("tests/data/configs/deepseek-r1/config.json")); c["num_hidden_layers"] = 4
if sys.argv[2] == "bf16": c.pop("quantization_config", None)
json.dump(c, open(sys.argv[1] + "/config.json", "w"), indent=1)
PY
cp tests/data/tokenizer/deepseek-r1/* "$m"/
wait_health() { for _ in $(seq 1 240); do curl -sf "localhost:$1/health" >/dev/null 2>&1 && return 0; sleep 1; done; return 1; }
python3 - > "$OUT/ab_body.json" <<'PY'
import json, random
random.seed(7)
words = "the river carried small stones past the mill while children counted boats and the old keeper sang".split()
prompt = " ".join(random.choice(words) for _ in range(1100))
print(json.dumps({"prompt": prompt, "max_tokens": 8, "temperature": 0, "logprobs": 5, "prompt_logprobs": 5,
                  "ignore_eos": True}))
PY
# name | environment | extra serve flags. Two noise floors (two correct computations of the same math in other
# summation orders): "chunked" / "chunked32", the plain paths with the prompt prefilled in 256- / 32-token chunks; "reorder", the
# fast paths with other MLA prefill pieces (512 keys) and query tiles (64 rows). The fast paths should sit at them.
off="TROUPE_FUSE_QKV_A=0 TROUPE_SHARED_MERGE_TOKENS=0 TROUPE_MOE_LT=0 TROUPE_MLA_PREFILL_MIN=0"
off+=" TROUPE_MOE_GEMV_TOKENS=0 TROUPE_GEMV_TOKENS=0 TROUPE_MLA_ABSORB=0"
off+=" TROUPE_MLA_QB_ABSORB=0 TROUPE_FLAT_RESIDUAL=0 TROUPE_DENSE_GATE_UP_GEMV=0 TROUPE_MOE_GATE_UP_FLAT=0"
# (one line: `read` below splits the variants at newlines)
variants=("fast||" "plain|$off|" "chunked|$off|--max-num-batched-tokens 256" "chunked32|$off|--max-num-batched-tokens 32"
          "reorder|TROUPE_MLA_PREFILL_PIECE=512 TROUPE_MLA_PREFILL_TILE=64|"
          "no_fuse|TROUPE_FUSE_QKV_A=0|" "no_merge|TROUPE_SHARED_MERGE_TOKENS=0|" "no_lt|TROUPE_MOE_LT=0|"
          "no_mla_prefill|TROUPE_MLA_PREFILL_MIN=0|" "no_mla_wgmma|TROUPE_MLA_PREFILL_WGMMA=0|"
          "moe_wgmma|TROUPE_MOE_LT_WGMMA=1|" "no_gemv|TROUPE_MOE_GEMV_TOKENS=0|"
          "no_dense_gemv|TROUPE_GEMV_TOKENS=0|" "no_mla_absorb|TROUPE_MLA_ABSORB=0|"
          "no_qb_absorb|TROUPE_MLA_QB_ABSORB=0|" "no_flat_residual|TROUPE_FLAT_RESIDUAL=0|"
          "no_dense_gate_up|TROUPE_DENSE_GATE_UP_GEMV=0|" "no_gate_up_flat|TROUPE_MOE_GATE_UP_FLAT=0|")
for v in "${variants[@]}"; do
  IFS='|' read -r name envs flags <<< "$v"
  # shellcheck disable=SC2086  # envs and flags are word lists
  env $envs troupe serve --backend cuda --model "$m" --load-format dummy --max-model-len 4096 --port 8031 \
    --enforce-eager $flags > "$OUT/serve_ab_${dtype}_$name.log" 2>&1 & pid=$!
  if wait_health 8031; then
    curl -s localhost:8031/v1/completions -H 'content-type: application/json' -d @"$OUT/ab_body.json" \
      > "$OUT/ab_${dtype}_$name.json"
  else
    echo "$name serve did not become healthy"; tail -5 "$OUT/serve_ab_${dtype}_$name.log"
  fi
  kill "$pid"; wait "$pid" 2>/dev/null
done
# bf16: the fast paths must sit at the floor (1.5x). FP8: every rounding difference upstream of a 1x128 activation
# quantization moves some values by a whole FP8 step, so the drift of two correct orders depends on how much
# they differ, not only whether: pieces merged in another order drift less than absorbed against non-absorbed
# attention, which in bf16 sits at the floor. There the bound is 3x, a guard against gross errors (a wrong scale
# or a misplaced expert moves logprobs by whole units, and top-1 ids at random over 129k).
factor=$([[ $dtype == bf16 ]] && echo 1.5 || echo 3)
echo "== R1, 4 layers, $dtype dummy weights"
python3 "$here/switch_ab.py" "$OUT" "$dtype" plain chunked:plain,chunked32:plain,reorder:fast "$factor" \
  fast no_fuse no_merge no_lt no_mla_prefill no_mla_wgmma moe_wgmma no_gemv no_dense_gemv no_mla_absorb no_qb_absorb \
  no_flat_residual no_dense_gate_up no_gate_up_flat
