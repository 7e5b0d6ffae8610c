#!/usr/bin/env python3
"""Writes the tiny DeepSeek checkpoints and the golden logits the cpu reference is tested against.

Run from anywhere: python3 make_tiny.py  (needs torch, transformers >= 5 with DeepseekV2/V3, safetensors).
Each model directory gets config.json (R1 style: rope_scaling with "type": "yarn"), model.safetensors in
DeepSeek's published layout (per-expert tensors, router weight/bias in float32) and golden.safetensors:
  prompt.N.tokens  int32 [n]          prompt.N.logits float32 [n, vocab]
The logits come from transformers' DeepseekV3ForCausalLM / DeepseekV2ForCausalLM built in float32 and loaded
with the checkpoint's stored values upcast (FP8 dequantized as fp8 * weight_scale_inv per 128x128 block).
"""
import json, math, os, sys
import numpy as np
import torch
from safetensors.torch import save_file
import transformers
from transformers import DeepseekV2Config, DeepseekV2ForCausalLM, DeepseekV3Config, DeepseekV3ForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
BLOCK = 128
YARN = {"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096, "beta_fast": 32, "beta_slow": 1,
        "mscale": 1.0, "mscale_all_dim": 1.0}
PROMPT_LENS = [1, 5, 17, 64, 120]

V3 = dict(architectures=["DeepseekV3ForCausalLM"], model_type="deepseek_v3", vocab_size=512, hidden_size=256,
          intermediate_size=384, moe_intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
          num_key_value_heads=4, n_shared_experts=1, n_routed_experts=12, num_experts_per_tok=3, n_group=3,
          topk_group=2, topk_method="noaux_tc", scoring_func="sigmoid", norm_topk_prob=True,
          routed_scaling_factor=2.5, first_k_dense_replace=1, moe_layer_freq=1, q_lora_rank=192, kv_lora_rank=128,
          qk_nope_head_dim=64, qk_rope_head_dim=32, v_head_dim=64, hidden_act="silu",
          max_position_embeddings=163840, rms_norm_eps=1e-6, rope_theta=10000, rope_scaling=YARN,
          tie_word_embeddings=False, attention_bias=False, bos_token_id=0, eos_token_id=1, torch_dtype="bfloat16")
# V2-Lite shape: no q_lora, softmax greedy routing, 2 shared experts. mscale != mscale_all_dim on purpose so the
# cos/sin attention factor (1.0 in the published configs) is exercised too.
V2 = dict(architectures=["DeepseekV2ForCausalLM"], model_type="deepseek_v2", vocab_size=512, hidden_size=128,
          intermediate_size=256, moe_intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
          num_key_value_heads=4, n_shared_experts=2, n_routed_experts=8, num_experts_per_tok=3, n_group=1,
          topk_group=1, topk_method="greedy", scoring_func="softmax", norm_topk_prob=False,
          routed_scaling_factor=1.0, first_k_dense_replace=1, moe_layer_freq=1, q_lora_rank=None, kv_lora_rank=96,
          qk_nope_head_dim=32, qk_rope_head_dim=16, v_head_dim=32, hidden_act="silu",
          max_position_embeddings=163840, rms_norm_eps=1e-6, rope_theta=10000,
          rope_scaling=dict(YARN, mscale=1.0, mscale_all_dim=0.707),
          tie_word_embeddings=False, attention_bias=False, bos_token_id=0, eos_token_id=1, torch_dtype="bfloat16")


def linear_shapes(c):
    """(name, [out, in]) of every linear weight, in the published naming."""
    h, nh = c["hidden_size"], c["num_attention_heads"]
    qk = c["qk_nope_head_dim"] + c["qk_rope_head_dim"]
    out = []
    for L in range(c["num_hidden_layers"]):
        a = f"model.layers.{L}.self_attn."
        if c["q_lora_rank"]:
            out += [(a + "q_a_proj", [c["q_lora_rank"], h]), (a + "q_b_proj", [nh * qk, c["q_lora_rank"]])]
        else:
            out += [(a + "q_proj", [nh * qk, h])]
        out += [(a + "kv_a_proj_with_mqa", [c["kv_lora_rank"] + c["qk_rope_head_dim"], h]),
                (a + "kv_b_proj", [nh * (c["qk_nope_head_dim"] + c["v_head_dim"]), c["kv_lora_rank"]]),
                (a + "o_proj", [h, nh * c["v_head_dim"]])]
        m = f"model.layers.{L}.mlp."
        if L < c["first_k_dense_replace"]:
            mlps = [(m, c["intermediate_size"])]
        else:
            mlps = [(m + f"experts.{e}.", c["moe_intermediate_size"]) for e in range(c["n_routed_experts"])]
            mlps += [(m + "shared_experts.", c["moe_intermediate_size"] * c["n_shared_experts"])]
        for p, i in mlps:
            out += [(p + "gate_proj", [i, h]), (p + "up_proj", [i, h]), (p + "down_proj", [h, i])]
    return out


def make_weights(c, seed, attn_gain=2.0):
    """float32 master weights, rounded through bf16 so the bf16 checkpoint stores them exactly."""
    g = torch.Generator().manual_seed(seed)
    rnd = lambda *s: torch.randn(*s, generator=g)
    w = {}
    for name, (o, i) in linear_shapes(c):
        gain = attn_gain if name.endswith(("q_b_proj", "q_proj", "kv_a_proj_with_mqa")) else 1.0  # peaky attention
        w[name + ".weight"] = rnd(o, i) * gain / math.sqrt(i)
    h = c["hidden_size"]
    norms = ["input_layernorm", "post_attention_layernorm", "self_attn.kv_a_layernorm"]
    if c["q_lora_rank"]:
        norms.append("self_attn.q_a_layernorm")
    for L in range(c["num_hidden_layers"]):
        for n in norms:
            size = {"self_attn.kv_a_layernorm": c["kv_lora_rank"], "self_attn.q_a_layernorm": c["q_lora_rank"]}.get(n, h)
            w[f"model.layers.{L}.{n}.weight"] = 1.0 + 0.2 * rnd(size)
    w["model.embed_tokens.weight"] = rnd(c["vocab_size"], h)
    w["model.norm.weight"] = 1.0 + 0.2 * rnd(h)
    w["lm_head.weight"] = rnd(c["vocab_size"], h) / math.sqrt(h)
    w = {k: v.to(torch.bfloat16).float() for k, v in w.items()}
    for L in range(c["first_k_dense_replace"], c["num_hidden_layers"]):  # router: float32, not rounded
        w[f"model.layers.{L}.mlp.gate.weight"] = rnd(c["n_routed_experts"], h) / math.sqrt(h)
        if c["scoring_func"] == "sigmoid":
            w[f"model.layers.{L}.mlp.gate.e_score_correction_bias"] = 0.1 * rnd(c["n_routed_experts"])
    return w


def is_fp8_weight(name):
    return name.endswith("proj.weight") or name.endswith("proj_with_mqa.weight")


def quantize_fp8(w):
    """DeepSeek's block quantization: one float32 scale per 128x128 block, amax maps to 448."""
    o, i = w.shape
    ro, ri = -(-o // BLOCK), -(-i // BLOCK)
    scale = torch.empty(ro, ri)
    q = torch.empty(o, i, dtype=torch.float8_e4m3fn)
    for bo in range(ro):
        for bi in range(ri):
            blk = w[bo * BLOCK:(bo + 1) * BLOCK, bi * BLOCK:(bi + 1) * BLOCK]
            s = max(blk.abs().max().item(), 1e-12) / 448.0
            scale[bo, bi] = s
            q[bo * BLOCK:(bo + 1) * BLOCK, bi * BLOCK:(bi + 1) * BLOCK] = (blk / s).to(torch.float8_e4m3fn)
    return q, scale


def dequantize_fp8(q, scale):
    s = scale.repeat_interleave(BLOCK, 0).repeat_interleave(BLOCK, 1)[: q.shape[0], : q.shape[1]]
    return q.float() * s


def write_checkpoint(c, w, out_dir, fp8):
    """Returns the float32 values the engine will see (what the reference must use)."""
    os.makedirs(out_dir, exist_ok=True)
    stored, seen = {}, {}
    for k, v in w.items():
        if fp8 and is_fp8_weight(k) and not k.startswith("lm_head"):
            q, s = quantize_fp8(v)
            stored[k], stored[k + "_scale_inv"] = q, s
            seen[k] = dequantize_fp8(q, s)
        elif ".mlp.gate." in k:
            stored[k], seen[k] = v.float().contiguous(), v.float()
        else:
            stored[k], seen[k] = v.to(torch.bfloat16).contiguous(), v
    save_file(stored, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    cfg = dict(c)
    if fp8:
        cfg["quantization_config"] = {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                                      "weight_block_size": [BLOCK, BLOCK]}
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    return seen


def hf_state_dict(c, seen):
    """The published per-expert tensors, stacked the way transformers 5 holds them (gate_up_proj, down_proj)."""
    sd = {}
    for k, v in seen.items():
        if ".mlp.experts." not in k:
            sd[k] = v
    for L in range(c["first_k_dense_replace"], c["num_hidden_layers"]):
        p = f"model.layers.{L}.mlp.experts."
        E = range(c["n_routed_experts"])
        sd[p + "gate_up_proj"] = torch.stack(
            [torch.cat([seen[f"{p}{e}.gate_proj.weight"], seen[f"{p}{e}.up_proj.weight"]], 0) for e in E])
        sd[p + "down_proj"] = torch.stack([seen[f"{p}{e}.down_proj.weight"] for e in E])
    return sd


def hf_model(c, seen):
    hf = {k: v for k, v in c.items() if k not in ("architectures", "model_type", "torch_dtype")}
    if c["model_type"] == "deepseek_v3":
        cfg, cls = DeepseekV3Config(**hf), DeepseekV3ForCausalLM
    else:
        cfg, cls = DeepseekV2Config(**hf), DeepseekV2ForCausalLM
    cfg._attn_implementation = "eager"
    model = cls(cfg).float().eval()
    missing, unexpected = model.load_state_dict(hf_state_dict(c, seen), strict=False)
    missing = [m for m in missing if "rotary" not in m]
    assert not missing and not unexpected, (missing, unexpected)
    return model


def reference_logits(c, seen, prompts):
    model = hf_model(c, seen)
    with torch.no_grad():
        return [model(torch.tensor([p])).logits[0].float().contiguous() for p in prompts]


def build(name, c, seed, fp8=False, weights=None):
    w = weights if weights is not None else make_weights(c, seed)
    out_dir = os.path.join(HERE, name)
    seen = write_checkpoint(c, w, out_dir, fp8)
    g = torch.Generator().manual_seed(seed + 1)
    prompts = [torch.randint(0, c["vocab_size"], (n,), generator=g).tolist() for n in PROMPT_LENS]
    logits = reference_logits(c, seen, prompts)
    golden = {}
    for i, (p, l) in enumerate(zip(prompts, logits)):
        golden[f"prompt.{i}.tokens"] = torch.tensor(p, dtype=torch.int32)
        golden[f"prompt.{i}.logits"] = l
        print(f"{name} prompt {i}: {len(p)} tokens, logit std {l.std().item():.3f}")
    save_file(golden, os.path.join(out_dir, "golden.safetensors"))
    return w


if __name__ == "__main__":
    # make_tiny.py [v3_margin]: every folder, or only the wide-margin V3 pair (margin.py)
    torch.set_num_threads(2)
    print("torch", torch.__version__, "transformers", transformers.__version__)
    only_margin = sys.argv[1:] == ["v3_margin"]
    if not only_margin:
        w = build("v3_bf16", V3, seed=1234)
        build("v3_fp8", V3, seed=1234, fp8=True, weights=w)
        build("v2_lite", V2, seed=4321)
    import margin
    margin.build_pair(V3, seed=1234)
