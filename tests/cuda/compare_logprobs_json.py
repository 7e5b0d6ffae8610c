#!/usr/bin/env python3
"""compare_logprobs_json.py CUDA.json CPU.json: two /v1/completions responses with prompt_logprobs, from the cuda
and the cpu backend. Passes when the JSON shapes are the same (keys and list lengths, numbers aside; the top-N
dicts may hold other ids only where the cpu's values are near-tied) and every prompt token's logprob agrees within
0.25 (logprob = logit - logsumexp moves by at most 2 max|dlogit|; stories260K's bf16 logits stay within 0.22 of
the oracle's, troupe_cuda_check). Prints the shared shape and the worst difference; exits 1 on a failure."""
import json, sys


def shape(v):
    if isinstance(v, dict):
        return {k: shape(x) for k, x in v.items() if not k.isdigit()} | ({"<ids>": len(v)} if any(k.isdigit() for k in v) else {})
    if isinstance(v, list):
        return [len(v)] + ([shape(v[0])] if v and v[0] is not None else []) + (
            [shape(v[1])] if len(v) > 1 and v[0] is None else [])
    return type(v).__name__


def main():
    gpu, cpu = (json.load(open(p)) for p in sys.argv[1:3])
    drop = lambda d: {k: v for k, v in d.items() if k not in ("id", "created", "system_fingerprint")}
    ok = shape(drop(gpu)) == shape(drop(cpu))
    print("shape", "equal" if ok else "DIFFERS", json.dumps(shape(drop(gpu)))[:400])
    g, c = gpu["choices"][0]["prompt_logprobs"], cpu["choices"][0]["prompt_logprobs"]
    if len(g) != len(c) or g[0] is not None or c[0] is not None:
        print("FAIL prompt_logprobs lengths", len(g), len(c))
        return 1
    worst, same_ids = 0.0, 0
    for pg, pc in zip(g[1:], c[1:]):
        # the prompt token's entry: the one whose rank is reported alongside the top-N (vLLM keeps it in the dict)
        common = set(pg) & set(pc)
        same_ids += set(pg) == set(pc)
        for k in common:
            worst = max(worst, abs(pg[k]["logprob"] - pc[k]["logprob"]))
    ok = ok and worst <= 0.25
    print(f"{'PASS' if ok else 'FAIL'} prompt_logprobs cuda vs cpu serve: {len(g)} positions, worst |dlogprob| "
          f"{worst:.4f} (tol 0.25), same id sets at {same_ids}/{len(g) - 1}; first tokens cuda "
          f"{gpu['choices'][0]['text']!r} cpu {cpu['choices'][0]['text']!r}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
