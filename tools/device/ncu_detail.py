#!/usr/bin/env python3
"""Why a kernel takes its time: one line per kernel from an `ncu --page raw --csv` log taken with the sections
SpeedOfLight, Occupancy, LaunchStats and WarpStateStats (profile.sh DETAIL=N makes one).

  ncu_detail.py LOG [--last N]

Per kernel: duration, DRAM throughput (% of peak), issue slots busy, achieved occupancy, registers, waves, and
the four largest stall reasons (warps stalled per issued instruction: long_scoreboard = waiting on global
memory, barrier = __syncthreads, math/mio throttle = pipes full, ...).
"""
import csv
import re
import sys

from ncu_summary import short


def num(v: str) -> float:
    try:
        return float(v.replace(",", ""))
    except ValueError:
        return float("nan")


def main() -> None:
    path = sys.argv[1]
    last = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[2] == "--last" else 0
    rows = list(csv.reader(l for l in open(path, errors="replace") if l.startswith('"')))
    if len(rows) < 3:
        print(f"{path}: no kernels profiled")
        return
    head, units = rows[0], rows[1]
    col = {name: i for i, name in enumerate(head)}

    def get(r, name):
        return num(r[col[name]]) if name in col else float("nan")

    stall = [(m.group(1), i) for i, h in enumerate(head)
             if (m := re.match(r"smsp__average_warps?_issue_stalled_(\w+?)_per_issue_active\.ratio$", h))]
    if not stall:  # the names differ in this ncu: show what it has
        print("no stall columns matched; some of the log's:", [h for h in head if "stall" in h][:8])
    t_unit = {"nsecond": 1e-3, "usecond": 1.0, "msecond": 1e3}.get(units[col["gpu__time_duration.sum"]], 1e-3)
    body = rows[2:][-last:] if last else rows[2:]
    print("      us  dram%  issue%  occ%  regs  waves  top stalls (warps per issue)")
    for r in body:
        stalls = sorted(((num(r[i]), n) for n, i in stall), reverse=True)[:4]
        print(f"{get(r, 'gpu__time_duration.sum') * t_unit:8.1f} "
              f"{get(r, 'gpu__dram_throughput.avg.pct_of_peak_sustained_elapsed'):6.1f} "
              f"{get(r, 'sm__issue_active.avg.pct_of_peak_sustained_elapsed'):7.1f} "
              f"{get(r, 'sm__warps_active.avg.pct_of_peak_sustained_active'):5.1f} "
              f"{get(r, 'launch__registers_per_thread'):5.0f} {get(r, 'launch__waves_per_multiprocessor'):6.2f}  "
              + " ".join(f"{n}={v:.1f}" for v, n in stalls) + f"  {short(r[col['Kernel Name']])}")


if __name__ == "__main__":
    main()
