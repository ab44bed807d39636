#!/usr/bin/env bash
# The fuzz lane: build every target on stable (`-s none`: no sanitizer, which needs nightly), then
# run each briefly from its corpus and checked-in seeds, so a crash (panic), a timeout or an
# allocation past the RSS limit fails CI. Nine targets at 12 s each, two at a time (libFuzzer runs
# one process per target, one core each: FUZZ_JOBS sets how many run side by side), keep the runs
# near one minute.
# Usage: fuzz/build.sh [seconds-per-target]   (default 12)
# The long run is scripts/fuzz-long.sh (figures in docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-12}
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
cargo fuzz build -s none --release

# One target's run: its verdict and, on failure, its log's tail. Exit 1 names the target.
fuzz_one() {
  local target=$1 secs=$2 log
  mkdir -p "corpus/$target" "seeds/$target"
  log=$(mktemp)
  # -rss_limit_mb: a decoder that allocates beyond its input's size fails here, not in production.
  # -timeout is generous: on a loaded shared machine a starved process once "timed out" at 10 s on
  # an input that replays in 0.06 s.
  if ! cargo fuzz run -s none --release "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$secs" -max_len=4096 -timeout=30 -rss_limit_mb=512 >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "fuzz target $target failed (its input is in fuzz/artifacts/$target/)"
    rm -f "$log"
    return 1
  fi
  echo "fuzzed $target for ${secs}s: $(grep -E '^Done' "$log" || echo 'no summary line')"
  rm -f "$log"
}
export -f fuzz_one
# xargs exits non-zero if any run failed (each failing run has printed its target and log).
cargo fuzz list | xargs -P "${FUZZ_JOBS:-2}" -I{} bash -c 'fuzz_one "$1" "$2"' _ {} "$secs"
