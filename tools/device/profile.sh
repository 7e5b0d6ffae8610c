#!/usr/bin/env bash
# Where the time of a step goes, per kernel: ncu (kernel durations only, clocks left alone) over one NVTX
# range of `troupe_cuda_check --smoke` (its rows: "decode batch 1", "decode batch 64", "decode batch 256",
# "prefill 4096 tokens", each with " eager" or " graphs"), summed by kernel by ncu_summary.py. On the device:
#   tools/device/on_device.sh 'tools/device/profile.sh r1 4 "prefill 4096 tokens eager"'
# The config is cut to LAYERS layers (R1: 3 dense + the rest MoE); each range holds 2 steps (warm-up + 1).
# LAST=N also lists the last N kernels in launch order. DETAIL=N adds a second ncu pass with the SpeedOfLight,
# Occupancy, LaunchStats and WarpStateStats sections over the range's last N kernels (one line each through
# ncu_detail.py: DRAM %, issue slots, occupancy, waves, stall reasons). NCU_CACHE=none keeps L2 as the kernels
# before left it (ncu flushes it before each kernel by default): what a prefetch into L2 does to the next kernel.
# ncu runs kernels one by one, so it hides the programmatic (PDL) overlap of a decode graph; for the time each
# kernel holds the critical path as the graph runs, use the in-graph timeline (kernels/core/timeline.hpp):
#   TROUPE_TIMELINE=$OUT/tl TROUPE_SMOKE_ROWS="decode batch 1" troupe_cuda_check --smoke /tmp/troupe-models/r1 4 8
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/troupe-out}; mkdir -p "$OUT"
model=$1 layers=$2; shift 2
d=/tmp/troupe-models/$model; mkdir -p "$d"
case $model in
  r1) cp tests/data/configs/deepseek-r1/config.json "$d"/ ;;
  v2lite) python3 -c 'import json,sys; c=json.load(open("tests/data/configs/deepseek-v2-lite/config.json")); c["vocab_size"]=129280; json.dump(c,open(sys.argv[1]+"/config.json","w"))' "$d" ;;
  *) echo "model: r1 or v2lite" >&2; exit 2 ;;
esac
for range in "$@"; do
  log="$OUT/ncu_${model}_$(echo "$range" | tr ' ' '_').csv"
  # --smoke runs the cut model twice (L1 = L2 = layers): 2 models x 2 steps per range.
  TROUPE_SMOKE_ITERS=1 ncu --clock-control none --cache-control "${NCU_CACHE:-all}" --nvtx --nvtx-include "$range/" \
    --metrics gpu__time_duration.sum \
    --csv --page raw --log-file "$log" troupe_cuda_check --smoke "$d" "$layers" "$layers" >/dev/null 2>&1 || true
  echo "== $model, $layers layers: $range"
  python3 tools/device/ncu_summary.py "$log" 4 | head -40
  if [[ ${LAST:-0} -gt 0 ]]; then  # LAST=26: the last 26 kernels in launch order (a decode step's last layer)
    echo "-- the last $LAST kernels"; python3 tools/device/ncu_summary.py "$log" 4 --last "$LAST"
  fi
  if [[ ${DETAIL:-0} -gt 0 ]]; then
    dlog="$OUT/ncu_detail_${model}_$(echo "$range" | tr ' ' '_').csv"
    TROUPE_SMOKE_ITERS=1 ncu --clock-control none --nvtx --nvtx-include "$range/" --section SpeedOfLight \
      --section Occupancy --section LaunchStats --section WarpStateStats --section ComputeWorkloadAnalysis \
      --csv --page raw --log-file "$dlog" \
      troupe_cuda_check --smoke "$d" "$layers" "$layers" >/dev/null 2>&1 || true
    echo "-- the last $DETAIL kernels in detail"; python3 tools/device/ncu_detail.py "$dlog" --last "$DETAIL"
  fi
done
