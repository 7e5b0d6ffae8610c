#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for a bounded time over its
# corpus in the repo. Prints the inputs each run tried. Usage: run_fuzz.sh BUILD_DIR [SECONDS]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$1/fuzz"
secs="${2:-20}"
mkdir -p "$out"
flags=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I"$root")
tmpl_src=("$root"/model/chat_template/*.cpp)
tmpl_src=("${tmpl_src[@]/*chat_template_test.cpp/}")
build() {  # name sources...
  local name="$1"; shift
  if [ ! -x "$out/$name" ] || [ -n "$(find "$@" -newer "$out/$name" 2>/dev/null | head -1)" ]; then
    clang++ "${flags[@]}" "$@" -o "$out/$name"
  fi
}
build fuzz_request "$root/tests/fuzz/fuzz_request.cpp" "$root/actors/http_frontend/openai_request.cpp"
build fuzz_template "$root/tests/fuzz/fuzz_template.cpp" ${tmpl_src[@]}
total=0
for t in request template; do
  work="$out/corpus_$t"
  mkdir -p "$work"
  # New inputs go to a scratch corpus; the repo's seeds are read-only input.
  log="$out/fuzz_$t.log"
  "$out/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
    "$work" "$root/tests/fuzz/corpus/$t" >"$log" 2>&1 || { tail -40 "$log"; echo "fuzz_$t FAILED"; exit 1; }
  n=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
  echo "fuzz_$t: $n inputs in ${secs}s, no crash"
  total=$((total + n))
done
echo "fuzz: $total inputs in total"
