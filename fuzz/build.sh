#!/usr/bin/env bash
# The fuzz lane: build every target on stable (`-s none`: no sanitizer, which needs nightly), then
# run each briefly from its corpus and checked-in seeds, so a crash (panic), a timeout or an
# allocation past the RSS limit fails CI. Nine targets at 12 s each keep the runs near 2 minutes.
# Usage: fuzz/build.sh [seconds-per-target]   (default 12)
# The long run is scripts/fuzz-long.sh (figures in docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-12}
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
cargo fuzz build -s none --release
for target in $(cargo fuzz list); do
  mkdir -p "corpus/$target" "seeds/$target"
  echo "fuzzing $target for ${secs}s"
  # -rss_limit_mb: a decoder that allocates beyond its input's size fails here, not in production.
  # -timeout is generous: on a loaded shared machine a starved process once "timed out" at 10 s on
  # an input that replays in 0.06 s.
  log=$(mktemp)
  if ! cargo fuzz run -s none --release "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$secs" -max_len=4096 -timeout=30 -rss_limit_mb=512 >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "fuzz target $target failed (its input is in fuzz/artifacts/$target/)"
    exit 1
  fi
  grep -E '^Done' "$log" || true
  rm -f "$log"
done
