#!/usr/bin/env python3
"""Golden data for streaming detokenization that follows a prompt (model/tokenizer/tokenizer_test.cpp).

Run from anywhere:  pip install tokenizers==0.23.3 && python3 tests/data/tokenizer/make_stream_golden.py
It writes golden/<name>_prompted_stream.jsonl, one line per (prompt, output, skip_special_tokens):
  {"prompt_ids", "output_ids", "skip_special_tokens", "text"[, "vllm_reset": true]}
where `text` is what vLLM's FastIncrementalDetokenizer (vllm/v1/engine/detokenizer.py) streams for the
output: a tokenizers.decoders.DecodeStream primed with the prompt's shortest 4..23-token suffix that decodes
without U+FFFD (else the whole prompt), then stepped through the output ids, the pieces concatenated.
The tokenizers are the ones make_golden.py wrote (and deepseek-r1/). Deterministic (fixed seed).
"""
import json
import os
import random

os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["RAYON_NUM_THREADS"] = "1"

from tokenizers import Tokenizer  # noqa: E402
from tokenizers.decoders import DecodeStream  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = {"llama2_sp": "llama2-sp", "llama2_metaspace": "llama2-metaspace", "qwen2_bpe": "qwen2-bpe",
          "llama3_bpe": "llama3-bpe", "deepseek_r1": "deepseek-r1"}
PROMPTS = ["Hello", "The quick brown fox", "Q: what is 2+2?\nA:", "中文测试，你好世界。", "a", "  spaced  ",
           "emoji 🎉🎉 end", "[INST] tell me a story [/INST]", "line one\nline two\n", "Привет, мир!"]
OUTPUTS = [" world", "Hello there, friend.", " jumps over the lazy dog.", "4", "\n\nSure! Here it is:",
           "你好", " 🎉 party", "  two spaces", "Once upon a time", "é à ü", "x"]


def vllm_stream(tok, prompt_ids, output_ids, skip):
    """vLLM 0.9's FastIncrementalDetokenizer, step for step."""
    stream = DecodeStream(skip_special_tokens=skip)
    suffix = prompt_ids
    if len(prompt_ids) > 4:
        for i in range(4, min(len(prompt_ids) + 1, 24)):
            if "\ufffd" not in tok.decode(prompt_ids[-i:]):
                suffix = prompt_ids[-i:]
                break
    for t in suffix:
        stream.step(tok, t)
    pieces, reset = [], False
    for t in output_ids:
        try:
            pieces.append(stream.step(tok, t) or "")
        except Exception as e:  # vLLM's recovery from a non-monotonic prefix: a fresh stream
            if not str(e).startswith("Invalid prefix encountered"):
                raise
            reset = True
            stream = DecodeStream(skip_special_tokens=skip)
            pieces.append(stream.step(tok, t) or "")
    return "".join(pieces), reset


def case(tok, prompt_ids, output_ids, skip):
    text, reset = vllm_stream(tok, prompt_ids, output_ids, skip)
    line = {"prompt_ids": prompt_ids, "output_ids": output_ids, "skip_special_tokens": skip, "text": text}
    if reset:  # vLLM reset its DecodeStream mid-output (its own recovery path, not a decode rule)
        line["vllm_reset"] = True
    return line


def special_ids(tok):
    return [t for t, a in sorted(tok.get_added_tokens_decoder().items()) if a.special][:3]


def main():
    rng = random.Random(1234)
    for name, folder in MODELS.items():
        tok = Tokenizer.from_file(os.path.join(HERE, folder, "tokenizer.json"))
        specials = special_ids(tok)
        lines = []
        for p in PROMPTS:
            for o in OUTPUTS:
                prompt_ids = tok.encode(p, add_special_tokens=True).ids
                output_ids = tok.encode(o, add_special_tokens=False).ids
                for skip in (True, False):
                    lines.append(case(tok, prompt_ids, output_ids, skip))
        # Special tokens at the prompt's end / in the output, and prompts cut inside a character.
        for _ in range(60):
            p, o = rng.choice(PROMPTS), rng.choice(OUTPUTS)
            prompt_ids = tok.encode(p, add_special_tokens=True).ids
            output_ids = tok.encode(o, add_special_tokens=False).ids
            if specials and rng.random() < 0.5:
                prompt_ids = prompt_ids + [rng.choice(specials)]
            if specials and rng.random() < 0.3:
                output_ids = [rng.choice(specials)] + output_ids
            if rng.random() < 0.3 and len(prompt_ids) > 2:
                prompt_ids = prompt_ids[:rng.randrange(1, len(prompt_ids))]
            skip = rng.random() < 0.5
            lines.append(case(tok, prompt_ids, output_ids, skip))
        with open(os.path.join(HERE, "golden", name + "_prompted_stream.jsonl"), "w", encoding="utf-8") as f:
            for line in lines:
                f.write(json.dumps(line, ensure_ascii=False) + "\n")
        leading = sum(1 for line in lines if line["text"].startswith(" "))
        resets = sum(1 for line in lines if line.get("vllm_reset"))
        print(f"{name}: {len(lines)} cases, {leading} start with a space, {resets} hit vLLM's stream reset")


if __name__ == "__main__":
    main()
