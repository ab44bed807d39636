#!/usr/bin/env bash
# The fuzz lane: build every target on stable (`-s none`: no sanitizer, which needs nightly), then
# run each briefly from its checked-in seeds so a crash in the model check fails CI.
# Usage: fuzz/build.sh [seconds-per-target]   (default 20)
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-20}
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
cargo fuzz build -s none --release
for target in $(cargo fuzz list); do
  mkdir -p "corpus/$target"
  echo "fuzzing $target for ${secs}s"
  cargo fuzz run -s none --release "$target" "corpus/$target" -- -max_total_time="$secs" -max_len=4096
done
