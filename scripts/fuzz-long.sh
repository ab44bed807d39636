#!/usr/bin/env bash
# The long fuzz run: every target for a while (niced: it shares the machine), with the executions
# and findings of each printed as a markdown table for docs/benchmarks.md.
# Usage: scripts/fuzz-long.sh [seconds-per-target] [targets...]   (default 120 s, every target)
# A crash, timeout or out-of-memory leaves its input in fuzz/artifacts/<target>/ and fails the run.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-120}
shift || true
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
cargo fuzz build -s none --release
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
total=0
failed=0
rows=""
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target" "seeds/$target"
  log=$(mktemp)
  set +e
  nice -n 19 cargo fuzz run -s none --release "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$secs" -max_len=4096 -timeout=60 -rss_limit_mb=512 -print_final_stats=1 >"$log" 2>&1
  rc=$?
  set -e
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -n 1)
  runs=${runs:-0}
  crashes=$(grep -cE 'deadly signal|panicked at' "$log" || true)
  timeouts=$(grep -c 'ERROR: libFuzzer: timeout' "$log" || true)
  ooms=$(grep -cE 'out-of-memory|malloc\(' "$log" || true)
  corpus=$(find "corpus/$target" -type f | wc -l)
  total=$((total + runs))
  [ "$rc" = 0 ] || failed=1
  rows+="| $target | $secs | $runs | $corpus | $crashes | $timeouts | $ooms |"$'\n'
  echo "$target: $runs executions, exit $rc" >&2
  [ "$rc" = 0 ] || tail -n 30 "$log" >&2
  rm -f "$log"
done
echo "| target | seconds | executions | corpus | panics | timeouts | out-of-memory |"
echo "|---|---|---|---|---|---|---|"
printf '%s' "$rows"
echo "| **all** | | **$total** | | | | |"
exit $failed
