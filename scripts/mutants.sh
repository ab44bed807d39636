#!/usr/bin/env bash
# Mutation testing of keel's core with cargo-mutants (not in CI: hours for the whole core).
# Usage: scripts/mutants.sh [FILE_GLOB ...] [-- CARGO_MUTANTS_ARGS ...]
#   default files: the parts (lease, rmap, pool, completer) and the memory store;
#   e.g. scripts/mutants.sh core/src/lease/machine.rs
#        scripts/mutants.sh 'core/src/pool/*.rs' -- --shard 0/4     (a quarter, sampled)
#        scripts/mutants.sh core/src/store/memory.rs -- --list      (count before running)
#        scripts/mutants.sh 'core/src/rmap/*.rs' -- --shard 0/8 --sharding round-robin --baseline skip   (MUTANTS_TIMEOUT=40)
# Every mutant is built and judged by keel's unit tests and the store conformance suite
# (`cargo test -p keel --features testkit --lib --test conformance_memory`). Test code (tests.rs,
# loom_tests.rs, the pool's regression.rs) is not mutated. Niced, one job at a time (the machine
# is shared); MUTANTS_JOBS overrides. Builds go to target/mutants-build (CARGO_TARGET_DIR), kept
# between runs so only keel is rebuilt (a fresh copy costs ~7 min of dependencies). Results land in target/mutants/mutants.out (caught.txt,
# missed.txt, unviable.txt, timeout.txt); the kill rate (unviable excluded) and every survivor
# are recorded in docs/benchmarks.md.
# The checker itself: MUTANTS_PACKAGE=keel-checks mutates keel-checks (checks/src/*.rs by default:
# the rules `cargo sim check` and the chaos lane judge with) and judges each mutant by its own unit
# tests (`cargo test -p keel-checks --lib`), no features, no conformance suite; builds go to
# target/mutants-checks-build, results to target/mutants-checks/mutants.out; e.g.
#        MUTANTS_PACKAGE=keel-checks scripts/mutants.sh checks/src/linearize.rs -- --timeout 30
#        MUTANTS_PACKAGE=keel-checks scripts/mutants.sh -- --list                 (count first)
# A survivor there is a rule whose comparison could flip unnoticed (docs/benchmarks.md, round 40).
# Not wired in: the simulation lane. A mutant judged by `cargo sim check` needs a release rebuild
# of keel and keel-sim under madsim plus the sweep: at least 5 min per mutant on this machine
# (docs/benchmarks.md), over a week for the core. The parts the unit tests cannot judge are covered by the zoo instead
# (`cargo sim mutants`), where each historical bug is re-injected and must be caught.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-mutants >/dev/null 2>&1 || cargo install --locked cargo-mutants
files=(); extra=()
while [ $# -gt 0 ]; do
  if [ "$1" = -- ]; then shift; extra=("$@"); break; fi
  files+=(--file "$1"); shift
done
pkg="${MUTANTS_PACKAGE:-keel}"
case "$pkg" in
  keel)
    [ ${#files[@]} = 0 ] && for f in 'core/src/lease/*.rs' 'core/src/rmap/*.rs' 'core/src/pool/*.rs' 'core/src/completer/*.rs' \
      core/src/store/memory.rs core/src/store/state.rs; do files+=(--file "$f"); done
    out_dir=target/mutants; build_dir=target/mutants-build
    pkg_args=(--features testkit --exclude '**/tests.rs' --exclude '**/loom_tests.rs' --exclude core/src/pool/regression.rs)
    test_args=(--lib --test conformance_memory) ;;
  keel-checks)
    [ ${#files[@]} = 0 ] && files=(--file 'checks/src/*.rs')
    out_dir=target/mutants-checks; build_dir=target/mutants-checks-build
    pkg_args=(); test_args=(--lib) ;;
  *) echo "MUTANTS_PACKAGE: keel or keel-checks, not $pkg" >&2; exit 1 ;;
esac
# A test timeout of 3 x the baseline's; MUTANTS_TIMEOUT=SECS sets it (needed with --baseline skip).
# A `--timeout` among the cargo-mutants arguments wins too (the two options exclude each other).
timeout_args=(--timeout-multiplier 3); [ -n "${MUTANTS_TIMEOUT:-}" ] && timeout_args=(--timeout "$MUTANTS_TIMEOUT")
for a in ${extra[@]+"${extra[@]}"}; do case "$a" in --timeout|--timeout=*) timeout_args=() ;; esac; done
mkdir -p "$out_dir" # a fresh clone has no target/ yet
set +e
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/$build_dir}" nice -n 10 cargo mutants --package "$pkg" --test-package "$pkg" --output "$out_dir" \
  --jobs "${MUTANTS_JOBS:-1}" ${pkg_args[@]+"${pkg_args[@]}"} --exclude-re 'impl (std::)?(fmt::)?(Debug|Display)' ${timeout_args[@]+"${timeout_args[@]}"} \
  "${files[@]}" ${extra[@]+"${extra[@]}"} -- "${test_args[@]}"
rc=$?
set -e
for a in ${extra[@]+"${extra[@]}"}; do [ "$a" = --list ] && exit $rc; done
out=$out_dir/mutants.out
caught=$(wc -l <"$out/caught.txt"); missed=$(wc -l <"$out/missed.txt"); timeout=$(wc -l <"$out/timeout.txt")
unviable=$(wc -l <"$out/unviable.txt")
viable=$((caught + missed + timeout))
echo "caught $caught, missed $missed, timeout $timeout (counted as caught), unviable $unviable (excluded)"
[ $viable -gt 0 ] && echo "kill rate: $(( (caught + timeout) * 100 / viable ))% of $viable viable mutants"
echo "survivors: $out/missed.txt"
# cargo-mutants exits 2 when some mutants were missed: that is the result, not a failure to run.
[ $rc = 0 ] || [ $rc = 2 ] || [ $rc = 3 ]
