#!/usr/bin/env python3
"""switch_ab.py DIR DTYPE REF A:B[,C:D] FACTOR VARIANT...: /v1/completions responses DIR/ab_DTYPE_NAME.json of one
model and request (prompt_logprobs and logprobs; switch_ab.sh), served with different fast paths. Each VARIANT is
compared with REF's (the plain paths): per position the largest |dlogprob| over the ids both top-N lists hold
("inf" where they share none), then the median and the 90th percentile over the prompt positions, over the
generated ones, and the share of positions with the same top-1 id. The floor pairs A:B are two correct
computations of the same math in other summation orders (other chunk sizes, other attention pieces): how far
such runs drift apart on this model; the floor is the largest pair's. A variant passes when its prompt median
and 90th percentile are at most FACTOR x the floor's; exits 1 when one does not. The generated tokens are
printed, not judged: once a near-tie flips, the contexts differ."""
import json, os, statistics, sys


def rows(resp):
    c = resp["choices"][0]
    prompt = [{k: v["logprob"] for k, v in r.items()} for r in c["prompt_logprobs"][1:]]
    return prompt, c["logprobs"]["top_logprobs"], c["text"]


def diffs(a_rows, b_rows):
    out, top1 = [], 0
    for a, b in zip(a_rows, b_rows):
        common = set(a) & set(b)
        out.append(max((abs(a[k] - b[k]) for k in common), default=float("inf")))
        top1 += max(a, key=a.get) == max(b, key=b.get)
    return out, top1


def stats(d):
    s = sorted(d)
    return statistics.median(s), s[int(0.9 * (len(s) - 1))]


def main():
    out_dir, dtype, ref, floors, factor, *variants = sys.argv[1:]
    factor = float(factor)
    load = lambda n: rows(json.load(open(os.path.join(out_dir, f"ab_{dtype}_{n}.json"))))

    def report(name, base):
        p, o, text = load(name)
        bp, bo, btext = load(base)
        dp, t1p = diffs(p, bp)
        do, t1o = diffs(o, bo)
        st = stats(dp)
        print(f"{name:>15} vs {base}: prompt {len(dp)} positions |dlogprob| median {st[0]:.4f} p90 {st[1]:.4f} "
              f"max {max(dp):.4f}, same top-1 {t1p}/{len(dp)}; generated median {stats(do)[0]:.4f}, same top-1 "
              f"{t1o}/{len(do)}, text {'same' if text == btext else repr(text)}")
        return st

    floor = [report(*pair.split(":")) for pair in floors.split(",")]
    fm, f90 = max(f[0] for f in floor), max(f[1] for f in floor)
    ok = True
    for name in variants:
        m, p90 = report(name, ref)
        good = m <= factor * fm and p90 <= factor * f90
        ok = ok and good
        print(f"{'PASS' if good else 'FAIL'} {dtype} {name}: prompt median {m:.4f} p90 {p90:.4f} against the floor's "
              f"{fm:.4f} / {f90:.4f} (at most {factor:g}x)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
