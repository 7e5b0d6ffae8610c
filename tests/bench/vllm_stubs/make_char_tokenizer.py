"""Writes a tokenizer.json with one token per printable ASCII character: the vocabulary of the `sim`
backend's byte-level codec, so vLLM's benchmark builds prompts of the lengths the server counts."""
import os
import sys

from tokenizers import Tokenizer, decoders, models

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
vocab = {chr(c): c - 0x20 for c in range(0x20, 0x7F)}
tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
tok.decoder = decoders.Fuse()
tok.save(os.path.join(out, "tokenizer.json"))
