d=/tmp/troupe-models/r1; mkdir -p $d; cp tests/data/configs/deepseek-r1/config.json $d/
timeout 120 troupe_kernel_test moe_experts_lt 2>&1 | tail -8
timeout 200 troupe_kernel_bench moe 2>&1 | grep -E "moe_experts_lt fp8.*R1 fp8 \(256.*n=(256|512|1024|2048|4096)"
for i in 1 2 3; do for v in 1 0; do echo "moe wgmma $v: $(TROUPE_MOE_LT_WGMMA=$v TROUPE_SMOKE_ROWS="prefill 4096" troupe_cuda_check --smoke "$d" 4 5 2>&1 | grep -E "^ +prefill")"; done; done
for k in moe_fp8_wgmma; do
TROUPE_MOE_LT_WGMMA=1 TROUPE_SMOKE_ITERS=1 TROUPE_SMOKE_ROWS="prefill 4096" timeout 200 ncu -k regex:$k --launch-count 2 --section SpeedOfLight --section WarpStateStats --section MemoryWorkloadAnalysis --csv --page raw troupe_cuda_check --smoke $d 4 4 > $OUT/ncu_$k.csv 2>&1; echo ncu $k rc=$?
python3 - $OUT/ncu_$k.csv <<'PY'
import csv, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
h = rows[0]
for v in rows[2:]:
  want = [(n, x) for n, x in zip(h, v) if "issue_stalled" in n and "pct" not in n or n in ("gpu__time_duration.sum", "sm__throughput.avg.pct_of_peak_sustained_elapsed", "dram__throughput.avg.pct_of_peak_sustained_elapsed", "lts__t_sector_hit_rate.pct", "dram__bytes_read.sum")]
  def f(x):
    try: return float(x.replace(",", ""))
    except: return -1
  for n, x in sorted(want, key=lambda t: -f(t[1]))[:9]: print(f"  {n} = {x}")
PY
done
