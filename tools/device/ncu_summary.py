#!/usr/bin/env python3
"""Sums an `ncu --csv --page raw --metrics gpu__time_duration.sum` log by kernel name: time per step and share.

  ncu_summary.py LOG STEPS            (STEPS: how many forward steps the profiled range held, for time per step)
  ncu_summary.py LOG STEPS --last N   the log's last N kernels in launch order (the tail of the last step: for
                                      a decode step, its last layer, the final norm and lm_head), each with its time
"""
import csv
import re
import sys
from collections import defaultdict


def short(name: str) -> str:
    raw = name
    name = name.replace("(anonymous namespace)", "anon").replace("<unnamed>", "anon")  # ncu spells it either way
    name = re.sub(r"\(.*", "", name)            # drop the argument list
    name = re.sub(r"<.*", "", name)             # and template arguments
    # Some names lose everything to the patterns above (a template argument list with parentheses before the
    # name's last component, an empty demangling): keep the raw name's head rather than an empty row.
    return name.split("::")[-1][:60] or raw[:60]


def main() -> None:
    path, steps = sys.argv[1], int(sys.argv[2])
    lines = [l for l in open(path, errors="replace") if l.startswith('"')]
    rows = list(csv.reader(lines))
    if len(rows) < 3:
        print(f"{path}: no kernels profiled")
        return
    head = rows[0]
    ki, ti = head.index("Kernel Name"), head.index("gpu__time_duration.sum")
    unit = rows[1][ti]
    scale = {"nsecond": 1e-6, "usecond": 1e-3, "msecond": 1.0}.get(unit, 1e-6)
    timed = []
    for r in rows[2:]:
        try:
            timed.append((short(r[ki]), float(r[ti].replace(",", "")) * scale))
        except ValueError:
            continue
    if len(sys.argv) > 4 and sys.argv[3] == "--last":
        for name, t in timed[-int(sys.argv[4]):]:
            print(f"  {1000 * t:8.1f} us  {name}")
        return
    total, count = defaultdict(float), defaultdict(int)
    for name, t in timed:
        total[name] += t
        count[name] += 1
    all_ms = sum(total.values())
    print(f"{path}: {sum(count.values())} kernels, {all_ms / steps:.3f} ms of kernel time per step")
    for name, t in sorted(total.items(), key=lambda kv: -kv[1]):
        print(f"  {t / steps:9.3f} ms {100 * t / all_ms:5.1f}%  x{count[name] / steps:6.1f}/step  {name}")


if __name__ == "__main__":
    main()
