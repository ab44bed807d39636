#!/usr/bin/env bash
# The user's-crate lane: sim/examples/scheduler is a service in its own crate, checked with
# keel-sim's public harness. Correct, it passes; with its realistic bug (`buggy`) it must fail
# with a replay line, and that line must reproduce the failure with the same trace hash.
set -euo pipefail
cd "$(dirname "$0")/../sim/examples/scheduler"

cargo fmt -- --check
cargo clippy --features sim --all-targets -- -D warnings
cargo test --features sim

out=$(mktemp)
set +e; cargo test --features sim,buggy >"$out" 2>&1; rc=$?; set -e
if [ $rc = 0 ]; then echo "the buggy scheduler passed: the harness missed its bug"; cat "$out"; exit 1; fi
line=$(grep -m1 '^replay: ' "$out" | sed 's/^replay: //' || true)
hash=$(grep -m1 -o 'same trace hash [0-9a-f]*' "$out" | awk '{print $4}' || true)
grep -m3 -E 'violated at' "$out" || true
[ -n "$line" ] && [ -n "$hash" ] || { echo "no replay line or no reproduced hash in:"; cat "$out"; exit 1; }
echo "buggy: failed as it must; replaying: $line"

set +e; env $line >"$out" 2>&1; rc=$?; set -e
again=$(grep -m1 -o 'same trace hash [0-9a-f]*' "$out" | awk '{print $4}' || true)
if [ $rc = 0 ] || [ "$again" != "$hash" ]; then
  echo "the replay line did not reproduce the failure (exit $rc, hash '$again' vs '$hash')"; cat "$out"; exit 1
fi
echo "replay reproduced the failure with trace hash $hash"
rm -f "$out"
