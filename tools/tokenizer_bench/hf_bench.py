#!/usr/bin/env python3
"""HF `tokenizers` single-threaded encode throughput on the corpus tokenizer_bench wrote.

  build-tok/tools/tokenizer_bench/tokenizer_bench --write-corpus /tmp/tok_corpus.jsonl
  RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false python3 tools/tokenizer_bench/hf_bench.py /tmp/tok_corpus.jsonl
"""
import json
import os
import sys
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
from tokenizers import Tokenizer  # noqa: E402
import tokenizers  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    corpus = sys.argv[1] if len(sys.argv) > 1 else "/tmp/tok_corpus.jsonl"
    tok_dir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "tests/data/tokenizer/deepseek-r1")
    passes = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    docs = [json.loads(line) for line in open(corpus, encoding="utf-8")]
    nbytes = sum(len(d.encode("utf-8")) for d in docs)
    t0 = time.perf_counter()
    tok = Tokenizer.from_file(os.path.join(tok_dir, "tokenizer.json"))
    print(f"tokenizers {tokenizers.__version__}; corpus: {len(docs)} docs, {nbytes / 1e6:.2f} MB; "
          f"load {time.perf_counter() - t0:.2f} s")
    best = float("inf")
    for p in range(passes):
        start = time.perf_counter()
        tokens = 0
        for d in docs:  # one document at a time: no encode_batch, no parallelism
            tokens += len(tok.encode(d, add_special_tokens=False).ids)
        s = time.perf_counter() - start
        best = min(best, s)
        print(f"pass {p + 1}: {tokens} tokens, {s:.3f} s, {nbytes / 1e6 / s:.2f} MB/s")
    print(f"HF tokenizers encode: {nbytes / 1e6 / best:.2f} MB/s (best of {passes} passes, 1 thread)")


if __name__ == "__main__":
    main()
