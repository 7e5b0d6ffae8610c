#!/usr/bin/env python3
"""Converts a llama2.c checkpoint (v0 "legacy" format, fp32) and its tokenizer (.bin) into a Hugging Face
Llama folder: config.json, model.safetensors, tokenizer.json, tokenizer_config.json, generation_config.json.

    python3 tools/convert_llama2c/convert_llama2c.py MODEL.bin TOKENIZER.bin OUT_DIR

Runs once to make models/stories260K; needs numpy and safetensors (pip), nothing at serve time.

Two things differ between the formats:
- RoPE: llama2.c rotates interleaved pairs (x[2i], x[2i+1]); HF Llama rotates halves (x[i], x[i+d/2]).
  The q/k projection rows are permuted exactly as transformers' convert_llama_weights_to_hf.py does, so
  HF's rotate_half computes the same attention.
- Tokenizer: llama2.c's encoder adds a dummy-prefix space, looks each code point up (byte fallback for
  the rest) and then repeatedly merges the adjacent pair whose concatenation has the best score. A
  SentencePiece-style BPE whose merges are ranked by that score reproduces it.
"""
import json
import struct
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

SPACE = "\u2581"  # SentencePiece's visible space


def read_model(path):
    raw = Path(path).read_bytes()
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len = struct.unpack_from("7i", raw, 0)
    shared = vocab > 0
    vocab = abs(vocab)
    head = dim // n_heads
    kv_dim = n_kv * head
    data = np.frombuffer(raw, dtype="<f4", offset=28)
    pos = 0

    def take(*shape):
        nonlocal pos
        n = int(np.prod(shape))
        out = data[pos:pos + n].reshape(shape).copy()
        pos += n
        return out

    w = {"tok": take(vocab, dim), "rms_att": take(n_layers, dim), "wq": take(n_layers, dim, dim),
         "wk": take(n_layers, kv_dim, dim), "wv": take(n_layers, kv_dim, dim), "wo": take(n_layers, dim, dim),
         "rms_ffn": take(n_layers, dim), "w1": take(n_layers, hidden, dim), "w2": take(n_layers, dim, hidden),
         "w3": take(n_layers, hidden, dim), "rms_final": take(dim)}
    pos += seq_len * head  # freq_cis_real and freq_cis_imag (seq_len x head/2 each): recomputed by RoPE
    w["cls"] = w["tok"] if shared else take(vocab, dim)
    if pos != data.size:
        sys.exit(f"{path}: {data.size - pos} floats left over; not a v0 llama2.c checkpoint?")
    hp = dict(dim=dim, hidden=hidden, n_layers=n_layers, n_heads=n_heads, n_kv=n_kv, vocab=vocab,
              seq_len=seq_len, shared=shared)
    return hp, w


def permute(w, n_heads, rows, cols):
    """Interleaved-pair rows -> half-split rows, per head (transformers' convert_llama_weights_to_hf)."""
    return w.reshape(n_heads, rows // n_heads // 2, 2, cols).transpose(0, 2, 1, 3).reshape(rows, cols)


def hf_tensors(hp, w):
    dim, n_heads, n_kv = hp["dim"], hp["n_heads"], hp["n_kv"]
    kv_dim = n_kv * (dim // n_heads)
    t = {"model.embed_tokens.weight": w["tok"], "model.norm.weight": w["rms_final"]}
    for i in range(hp["n_layers"]):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = w["rms_att"][i]
        t[p + "post_attention_layernorm.weight"] = w["rms_ffn"][i]
        t[p + "self_attn.q_proj.weight"] = permute(w["wq"][i], n_heads, dim, dim)
        t[p + "self_attn.k_proj.weight"] = permute(w["wk"][i], n_kv, kv_dim, dim)
        t[p + "self_attn.v_proj.weight"] = w["wv"][i]
        t[p + "self_attn.o_proj.weight"] = w["wo"][i]
        t[p + "mlp.gate_proj.weight"] = w["w1"][i]
        t[p + "mlp.down_proj.weight"] = w["w2"][i]
        t[p + "mlp.up_proj.weight"] = w["w3"][i]
    if not hp["shared"]:
        t["lm_head.weight"] = w["cls"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in t.items()}


def read_tokenizer(path, vocab):
    raw = Path(path).read_bytes()
    pos = 4  # max_token_length
    pieces = []
    for _ in range(vocab):
        score, n = struct.unpack_from("<fi", raw, pos)
        pos += 8
        pieces.append((raw[pos:pos + n], score))
        pos += n
    return pieces


def hf_piece(i, piece):
    if i == 0:
        return "<unk>"
    if i == 1:
        return "<s>"
    if i == 2:
        return "</s>"
    return piece.decode("utf-8").replace(" ", SPACE)  # byte tokens stay "<0xNN>"


def merges_by_score(vocab, scores):
    """Every split of a multi-character piece into two known pieces, best merged score first: the order in
    which llama2.c's encoder would merge them (ties: lower id first, as SentencePiece ranks them)."""
    merges = []
    for piece, pid in vocab.items():
        if pid < 3 or piece.startswith("<0x") or len(piece) < 2:
            continue
        for k in range(1, len(piece)):
            a, b = piece[:k], piece[k:]
            if a in vocab and b in vocab:
                merges.append((-scores[pid], pid, vocab[a], vocab[b], a, b))
    merges.sort()
    return [[m[4], m[5]] for m in merges]


def tokenizer_json(pieces):
    vocab = {hf_piece(i, p): i for i, (p, _) in enumerate(pieces)}
    scores = [s for _, s in pieces]
    special = [{"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
                "normalized": False, "special": True} for i, c in enumerate(["<unk>", "<s>", "</s>"])]
    bos = {"SpecialToken": {"id": "<s>", "type_id": 0}}
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": special,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": SPACE},
            {"type": "Replace", "pattern": {"String": " "}, "content": SPACE}]},
        "pre_tokenizer": None,
        "post_processor": {"type": "TemplateProcessing", "single": [bos, {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [bos, {"Sequence": {"id": "A", "type_id": 0}}, bos,
                                    {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": SPACE}, "content": " "}, {"type": "ByteFallback"},
            {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": vocab, "merges": merges_by_score(vocab, scores)},
    }


# The model only continues stories: user turns are the story so far, assistant turns its continuations.
CHAT_TEMPLATE = ("{{ bos_token }}{% for message in messages %}{% if message['role'] == 'assistant' %}"
                 "{{ message['content'] }}{{ eos_token }}{% elif message['role'] == 'user' %}"
                 "{{ message['content'] }}{% endif %}{% endfor %}")


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    model, tok, out = sys.argv[1:]
    hp, w = read_model(model)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_file(hf_tensors(hp, w), str(out / "model.safetensors"), metadata={"format": "pt"})
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
        "hidden_size": hp["dim"], "intermediate_size": hp["hidden"], "num_hidden_layers": hp["n_layers"],
        "num_attention_heads": hp["n_heads"], "num_key_value_heads": hp["n_kv"], "vocab_size": hp["vocab"],
        "max_position_embeddings": hp["seq_len"], "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "tie_word_embeddings": hp["shared"], "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32",
        "attention_bias": False,
    }
    dump = lambda name, obj: (out / name).write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")
    dump("config.json", config)
    (out / "tokenizer.json").write_text(json.dumps(tokenizer_json(read_tokenizer(tok, hp["vocab"])),
                                                   ensure_ascii=False))
    dump("tokenizer_config.json", {
        "add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
        "unk_token": "<unk>", "model_max_length": hp["seq_len"], "tokenizer_class": "LlamaTokenizerFast",
        "chat_template": CHAT_TEMPLATE})
    dump("generation_config.json", {"bos_token_id": 1, "eos_token_id": 2})


if __name__ == "__main__":
    main()
