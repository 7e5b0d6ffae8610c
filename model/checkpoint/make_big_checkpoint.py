#!/usr/bin/env python3
"""Writes a large synthetic Llama checkpoint (config.json + sharded bf16 safetensors + index) for measuring
weight-loading rate and progress output; no tokenizer (serve it with --skip-tokenizer-init). The values
are small valid bf16 numbers repeated from a 1 MiB pattern: the point is the bytes, not the model.

  python3 model/checkpoint/make_big_checkpoint.py OUT_DIR [--layers 16] [--hidden 2048]
"""
import argparse
import json
import os
import random
import struct


def bf16_pattern(n_bytes):
    rnd = random.Random(0)
    vals = [struct.pack("<f", rnd.gauss(0.0, 0.02))[2:] for _ in range(n_bytes // 2)]  # upper half = bf16
    return b"".join(vals)


def write_shard(path, tensors, pattern):
    header, offset = {}, 0
    for name, shape in tensors:
        n = 2
        for d in shape:
            n *= d
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for name, shape in tensors:
            n = 2
            for d in shape:
                n *= d
            while n > 0:
                k = min(n, len(pattern))
                f.write(pattern[:k])
                n -= k


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--layers", type=int, default=16)
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--vocab", type=int, default=32000)
    a = ap.parse_args()
    h, heads, kv_heads, ff = a.hidden, a.hidden // 128, max(1, a.hidden // 512), a.hidden * 11 // 4
    ff -= ff % 256
    os.makedirs(a.out, exist_ok=True)
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": h, "intermediate_size": ff,
           "num_hidden_layers": a.layers, "num_attention_heads": heads, "num_key_value_heads": kv_heads,
           "vocab_size": a.vocab, "max_position_embeddings": 2048, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
           "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "bfloat16"}
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    hd = 128
    shards = [[("model.embed_tokens.weight", [a.vocab, h]), ("model.norm.weight", [h]), ("lm_head.weight", [a.vocab, h])]]
    for i in range(a.layers):
        p = f"model.layers.{i}."
        shards.append([(p + "input_layernorm.weight", [h]), (p + "post_attention_layernorm.weight", [h]),
                       (p + "self_attn.q_proj.weight", [heads * hd, h]), (p + "self_attn.k_proj.weight", [kv_heads * hd, h]),
                       (p + "self_attn.v_proj.weight", [kv_heads * hd, h]), (p + "self_attn.o_proj.weight", [h, heads * hd]),
                       (p + "mlp.gate_proj.weight", [ff, h]), (p + "mlp.up_proj.weight", [ff, h]),
                       (p + "mlp.down_proj.weight", [h, ff])])
    pattern = bf16_pattern(1 << 20)
    weight_map, total = {}, 0
    for k, tensors in enumerate(shards):
        fname = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        write_shard(os.path.join(a.out, fname), tensors, pattern)
        for name, shape in tensors:
            weight_map[name] = fname
            n = 2
            for d in shape:
                n *= d
            total += n
    with open(os.path.join(a.out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=1)
    print(f"{a.out}: {total / 1e9:.3f} GB in {len(shards)} shards")


if __name__ == "__main__":
    main()
