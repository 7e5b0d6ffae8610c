#!/usr/bin/env python3
"""Golden data for tests/stories260k_test.cpp from models/stories260K with HF transformers (CPU torch):
greedy token ids in llama2.c's `run -t 0 -n STEPS` convention (BOS, prompt, then generated tokens until
STEPS+1 positions or BOS), checked to decode to llama2.c's own outputs, and the logits of the prompt.

    python3 tools/convert_llama2c/make_stories_golden.py models/stories260K tests/data/stories260K
"""
import sys
from pathlib import Path

import torch
from tokenizers import Tokenizer
from transformers import LlamaForCausalLM

model_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
model = LlamaForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))


def greedy(ids, steps):
    ids = list(ids)
    with torch.no_grad():
        while len(ids) < steps + 1:
            nxt = int(model(torch.tensor([ids])).logits[0, -1].argmax())
            if nxt == 1:
                break
            ids.append(nxt)
    return ids


for name, prompt, steps in [("t0_n256_noprompt", "", 256), ("t0_n64_once_upon_a_time", "Once upon a time", 64)]:
    ids = greedy(tok.encode(prompt).ids if prompt else [1], steps)
    text = (out / f"golden_{name}.txt").read_text()
    assert tok.decode(ids[1:]) + "\n" == text, name
    (out / f"golden_{name}.ids").write_text(" ".join(map(str, ids)) + "\n")

ids = tok.encode("Once upon a time").ids
with torch.no_grad():
    logits = model(torch.tensor([ids])).logits[0]
with open(out / "logits_once_upon_a_time.txt", "w") as f:
    f.write(" ".join(map(str, ids)) + "\n")
    for row in logits:
        f.write(" ".join(f"{v:.6g}" for v in row.tolist()) + "\n")
