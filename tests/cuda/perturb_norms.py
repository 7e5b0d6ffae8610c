#!/usr/bin/env python3
"""Writes a copy of a safetensors checkpoint whose RMSNorm weights are multiplied by (1 + eps * N(0, 1)), rounded
to bf16. Used with troupe_route_sensitivity to measure how far the cpu oracle's own logits move under noise of the
size of bf16 activation rounding (tests/cuda/cuda_check.cpp explains why the MoE models need that number).

    perturb_norms.py SRC_DIR DST_DIR [eps=0.004] [seed=0]
"""
import json, os, shutil, struct, sys
import numpy as np

src, dst = sys.argv[1], sys.argv[2]
eps = float(sys.argv[3]) if len(sys.argv) > 3 else 0.004
rng = np.random.default_rng(int(sys.argv[4]) if len(sys.argv) > 4 else 0)
os.makedirs(dst, exist_ok=True)
shutil.copy(os.path.join(src, "config.json"), dst)
raw = open(os.path.join(src, "model.safetensors"), "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
body = bytearray(raw[8 + n:])
for name, t in header.items():
    if name == "__metadata__" or not name.endswith("layernorm.weight") and name != "model.norm.weight":
        continue
    assert t["dtype"] == "BF16", name
    b, e = t["data_offsets"]
    bits = np.frombuffer(bytes(body[b:e]), dtype=np.uint16).astype(np.uint32) << 16
    f = bits.view(np.float32) * (1 + eps * rng.standard_normal(bits.size)).astype(np.float32)
    u = f.view(np.uint32)
    out = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)  # round to nearest even
    body[b:e] = out.tobytes()
open(os.path.join(dst, "model.safetensors"), "wb").write(raw[:8 + n] + bytes(body))
