#!/usr/bin/env bash
# What of keel's core the simulator's scenarios never run: a bug planted there is invisible to
# every rule. Builds keel-sim with LLVM source coverage, sweeps each scenario, and prints the
# per-file line coverage of core/src and the lines no run reached (mutant branches, which run only
# under their mutant, left out). A long lane: its findings are recorded in docs/simulation.md.
# Usage: scripts/sim-coverage.sh [SEEDS_SCALE]   (1 = lease 0..400, rmap 0..100, pool 0..50, ...)
# Exit 0 with the report on stdout; 2 on bad arguments.
set -euo pipefail
cd "$(dirname "$0")/.."

scale=${1:-1}
case $scale in ''|*[!0-9]*|0) echo "usage: scripts/sim-coverage.sh [SEEDS_SCALE >= 1]" >&2; exit 2;; esac

rustup component list --installed 2>/dev/null | grep -q '^llvm-tools' || rustup component add llvm-tools
bin="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin"
target=target/coverage
out=$target/profiles
rm -rf "$out" && mkdir -p "$out"

cargo build --quiet --release --config "build.rustflags=['--cfg','madsim','-C','instrument-coverage']" \
  --target-dir "$target" -p keel-sim --features sim
sim=$target/release/keel-sim
for s in lease:400 rmap:100 rmapae:50 rmapclock:50 completer:300 completerclock:100 pool:50 poolfeed:40 poolloss:40; do
  scn=${s%%:*}; n=$(( ${s##*:} * scale ))
  LLVM_PROFILE_FILE="$out/%p-%m.profraw" "$sim" check --scenario "$scn" --seeds "0..$n" --jobs 2 --no-corpus >/dev/null || true
done
"$bin/llvm-profdata" merge -sparse "$out"/*.profraw -o "$out/all.profdata"
ignore='(\.cargo|rustc|/sim/|/checks/|testkit|/observe/|tests\.rs|_tests\.rs)'
"$bin/llvm-cov" report "$sim" -instr-profile="$out/all.profdata" --ignore-filename-regex="$ignore" \
  | awk 'NR == 1 { print "file", "lines" } NR > 2 && !/^-/ && NF >= 10 { print $1, $10 }' | column -t
echo
echo "## Lines no run reached (mutant branches left out)"
"$bin/llvm-cov" show "$sim" -instr-profile="$out/all.profdata" --ignore-filename-regex="$ignore" \
  -show-line-counts -use-color=false -show-instantiations=false \
  | python3 -c '
import re, sys
cur = None
for line in sys.stdin:
    if line.startswith("/"):
        cur = line.strip().rstrip(":").split("/core/src/")[-1]
        continue
    m = re.match(r"\s*(\d+)\|\s*(\S*)\|(.*)", line)
    if not m or cur is None or m.group(2) != "0":
        continue
    src = m.group(3).strip()
    if not src or src in ("}", "{", "};", "});", ")", "),") or src.startswith("//") or "Mutant::" in src:
        continue
    print(f"{cur}:{m.group(1)}: {src[:140]}")
'
