#!/usr/bin/env bash
# The chaos lane: keel's lease, pool, rmap and completer workloads as OS processes over a real redis-server under a
# seeded fault plan, judged by the real-world checkers (docs/chaos.md).
# Usage: scripts/chaos.sh [--cycles N] [--seed S] [--mutant M] [--jobs N] [--json FILE] [--keep]
# Exit 0: every checker passed; 1: a checker failed; 2: bad arguments.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
  echo "redis-server missing: installing it from Debian's packages"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi
# One build serves both the plain run and a mutant run: a mutant is switched on at run time, per
# process (keel::mutants is a thread-local switch; with none set every mutant branch is skipped).
cargo build --quiet --release -p keel-tests --features mutants --bin keel-chaos
exec target/release/keel-chaos "$@"
