#!/usr/bin/env bash
# Every test lane of keel, with its own set-up. Usage: scripts/test-all.sh [--quick]
#   --quick   skips the fuzz build and shortens the simulation sweep (for local iteration).
# CI (.ci/run) calls exactly this script. It fails loudly on the first failing lane.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
[ "${1:-}" = "--quick" ] && quick=1
lane() { printf '\n\033[1m== %s ==\033[0m\n' "$*"; }
started=$(date +%s)
elapsed() { echo "$(( $(date +%s) - started ))s"; }

lane "set-up"
if ! command -v redis-server >/dev/null 2>&1; then
  echo "redis-server missing: installing it from Debian's packages"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi
redis-server --version
rustup component list --installed 2>/dev/null | grep -qE '^(rustfmt|clippy)' || rustup component add rustfmt clippy
export KEEL_REQUIRE_REDIS=1   # real-Redis tests fail (never skip) without redis-server
# A clean clone gains nothing from incremental state, and full debug info is most of the debug
# builds' size: the lanes together used 11 GB of disk with both, and a CI run once died of a full
# disk. Line tables keep file:line in every backtrace.
export CARGO_INCREMENTAL=0
export CARGO_PROFILE_DEV_DEBUG=line-tables-only
export CARGO_PROFILE_TEST_DEBUG=line-tables-only
df -h . | tail -n 1 | awk '{print "disk: " $4 " free of " $2}'

lane "format"
cargo fmt --all -- --check

# keel-sim's `sim` feature only builds under `--cfg madsim` (its own lane below), so the native
# lanes take every feature of the other crates and keel-sim without `sim`.
lane "clippy (workspace, all features but keel-sim/sim)"
cargo clippy --workspace --exclude keel-sim --all-targets --all-features -- -D warnings
cargo clippy -p keel-sim --all-targets -- -D warnings

lane "unit, doc, conformance and real-Redis tests ($(elapsed))"
cargo test --workspace --exclude keel-sim --all-features
cargo test -p keel-sim
# keel's tests with its default features, as a user's `cargo test -p keel` builds them (tests
# that switch a mutant on need feature `mutants`; without this lane they broke that build).
cargo test -p keel
# Without TLS (a user who leaves `tls` out): the Redis config's own tests, a rediss:// URL refused
# by name.
cargo test -p keel --no-default-features --features redis --lib store::redis

# No later lane reads the native debug builds (the simulator builds under target/madsim, the
# models, chaos and examples elsewhere): free their ~3 GB before the rest adds its own. A CI run
# once died of a full disk.
rm -rf target/debug
df -h . | tail -n 1 | awk '{print "disk: " $4 " free of " $2}'

lane "simulation: seeded tests under madsim ($(elapsed))"
cargo clippy --config "build.rustflags=['--cfg','madsim']" --target-dir target/madsim -p keel-sim --features sim --all-targets -- -D warnings
cargo simtest

lane "simulation: cargo sim check, then the regression corpus sim/regressions ($(elapsed))"
if [ $quick = 1 ]; then cargo sim check --seeds 0..100; else cargo sim check --seeds 0..500; fi

lane "simulation: mutant gate ($(elapsed))"
cargo sim mutants

lane "simulation: same seed, same trace-hash ($(elapsed))"
for scn in lease rmap completer pool poolfeed; do for seed in 11 12; do
  a=$(cargo sim replay --scenario $scn --seed $seed | tail -n 1)
  b=$(cargo sim replay --scenario $scn --seed $seed | tail -n 1)
  echo "$scn seed $seed: $a / $b"
  [ "$a" = "$b" ] || { echo "non-deterministic trace for $scn seed $seed"; exit 1; }
done; done

lane "simulation: bad arguments are rejected with exit 2"
expect_2() {
  set +e; "$@" >/dev/null 2>&1; rc=$?; set -e
  [ $rc = 2 ] || { echo "expected exit 2 from: $*  (got $rc)"; exit 1; }
  echo "exit 2: $*"
}
expect_2 cargo sim check --seeds 5..2
expect_2 cargo sim check --scenario no-such-scenario
expect_2 cargo sim check --mutant MS99
expect_2 cargo sim replay --scenario lease --seed 1 --plan /nonexistent/plan.json
expect_2 cargo sim shrink --scenario lease --seed 1 --mutant MS5 --save ../outside
bad_plan=$(mktemp)
echo '{"seed":1,"profile":"Calm","enabled":[],"heal_at_ms":18446744073709551615,"events":[]}' >"$bad_plan"
expect_2 cargo sim replay --scenario lease --seed 1 --plan "$bad_plan"
echo '{"seed":1,"profile":"Calm","enabled":[],"heal_at_ms":1000,"events":[{"at_ms":5,"fault":{"NodeCrash":{"node":99,"down_ms":1}}}]}' >"$bad_plan"
expect_2 cargo sim replay --scenario lease --seed 1 --plan "$bad_plan"
echo 'not json' >"$bad_plan"
expect_2 cargo sim replay --scenario lease --seed 1 --plan "$bad_plan"
rm -f "$bad_plan"
# A closed stdout ends the CLI quietly (exit 141, as SIGPIPE would), never with a panic.
set +e; cargo sim replay --scenario lease --seed 1 --verbose 2>"${TMPDIR:-/tmp}/keel-pipe.err" | head -n 1 >/dev/null
rc=${PIPESTATUS[0]}; set -e
if [ "$rc" != 0 ] && [ "$rc" != 141 ] || grep -q panicked "${TMPDIR:-/tmp}/keel-pipe.err"; then
  echo "cargo sim | head: exit $rc"; cat "${TMPDIR:-/tmp}/keel-pipe.err"; exit 1
fi
echo "closed pipe: exit $rc, no panic"

lane "your own service: sim/examples/scheduler through the public harness ($(elapsed))"
bash scripts/example-test.sh

lane "model checking: exhaustive models of the pure machines ($(elapsed))"
cargo modelcheck

lane "simulation: HTML timeline in headless Chromium ($(elapsed))"
bash scripts/timeline-test.sh

lane "loom: exhaustive interleavings ($(elapsed))"
cargo loomtest

if [ $quick = 0 ] && [ -x fuzz/build.sh ]; then
  # Every fuzz target (store model, each stored record decoder) for 12 s: about 2 minutes of runs.
  lane "fuzz: build and run every target ($(elapsed))"
  bash fuzz/build.sh 12
fi

lane "chaos: OS processes over a real Redis, 10 fault cycles, then mutants MS3 and MC7 must be caught ($(elapsed))"
# docs/chaos.md. The plain run must pass every checker; the same plan with MS3 (a holder that
# keeps believing past its deadline) switched on in the app processes must fail on dual belief.
bash scripts/chaos.sh --cycles 10 --seed 1
chaos_out="${TMPDIR:-/tmp}/keel-chaos-ms3.out"
set +e; bash scripts/chaos.sh --cycles 10 --seed 1 --mutant MS3 >"$chaos_out" 2>&1; rc=$?; set -e
tail -n 8 "$chaos_out"
if [ "$rc" != 1 ] || ! grep -q '^FAIL dual belief' "$chaos_out"; then
  echo "keel-chaos did not catch MS3 (exit $rc)"; exit 1
fi
echo "MS3 caught: exit 1 on dual belief"
# A failing run keeps its directory for inspection; this one failed on purpose.
sed -n 's/^run directory (histories, child logs, redis data): //p' "$chaos_out" | xargs -r rm -rf
rm -f "$chaos_out"
# A completer mutant, caught by the simulator's own V4 (keel-checks) over the processes' events:
# a stop that gives up at once and reports its bound reached.
set +e; bash scripts/chaos.sh --cycles 2 --seed 1 --mutant MC7 >"$chaos_out" 2>&1; rc=$?; set -e
tail -n 4 "$chaos_out"
if [ "$rc" != 1 ] || ! grep -q '^FAIL V4' "$chaos_out"; then
  echo "keel-chaos did not catch MC7 (exit $rc)"; exit 1
fi
echo "MC7 caught: exit 1 on V4"
sed -n 's/^run directory (histories, child logs, redis data): //p' "$chaos_out" | xargs -r rm -rf
rm -f "$chaos_out"

du -sh target fuzz/target 2>/dev/null | awk '{print "disk used by builds: " $1 " " $2}' || true
lane "all lanes passed in $(elapsed)"
