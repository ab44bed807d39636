#!/usr/bin/env bash
# The HTML timeline of `cargo sim replay --html`, opened in real headless Chromium.
#
# Writes the page of a failing mutant run (lease, MS5: a release by plain DEL deletes another
# node's lease), screenshots it, dumps the DOM after the page's script ran, and checks that the
# page rendered, that the violation marker (#violation) is laid out with a non-zero box inside
# the chart, that the page loads nothing from the network, and that the screenshot is a real
# picture of the expected size. The page of a passing run must have no marker (so the check can
# fail). Everything is written to a temporary directory, never to the repo.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
  echo "chromium missing: installing it from Debian's packages"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
chromium --version

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
W=1400; H=800
fail() { echo "timeline test FAILED: $*"; [ -f "$tmp/chromium.log" ] && tail -n 20 "$tmp/chromium.log"; exit 1; }

browse() { # browse FILE.html ARGS… : headless Chromium, its noise (dbus, gpu) kept in a log
  local page=$1; shift
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=$W,$H "$@" \
    "file://$page" 2>>"$tmp/chromium.log"
}

# 1. The page of a failing run: replay exits 1 (an invariant broke) and writes the page.
set +e
cargo sim replay --scenario lease --seed 1 --mutant MS5 --html "$tmp/fail.html" >"$tmp/fail.txt" 2>&1
rc=$?
set -e
[ $rc = 1 ] || fail "expected exit 1 from the failing replay, got $rc"
grep -q '^VIOLATION S5' "$tmp/fail.txt" || fail "the replay did not break S5"
[ -s "$tmp/fail.html" ] || fail "no HTML written"
if grep -Eoi '(src|href|action)="(https?:)?//' "$tmp/fail.html"; then fail "the page loads something from the network"; fi
grep -qi '<script[^>]*src=' "$tmp/fail.html" && fail "the page has an external script"

# 2. Screenshot and DOM after the script ran.
browse "$tmp/fail.html" --screenshot="$tmp/fail.png"
browse "$tmp/fail.html" --virtual-time-budget=5000 --dump-dom >"$tmp/fail.dom"
body=$(grep -o '<body[^>]*>' "$tmp/fail.dom" | head -n 1)
echo "rendered: $body"
case "$body" in *'data-rendered="ok"'*) ;; *) fail "the page's script did not finish (no data-rendered=ok)";; esac
grep -q 'id="violation"' "$tmp/fail.dom" || fail "no #violation marker in the rendered DOM"
box=$(sed -n 's/.*data-violation-box="\([-0-9,]*\)".*/\1/p' <<<"$body")
IFS=, read -r left top width height <<<"$box"
[ -n "${height:-}" ] || fail "no marker box recorded ($box)"
[ "$width" -gt 0 ] && [ "$height" -gt 100 ] || fail "the marker has no size: $box"
[ "$left" -ge 80 ] && [ "$left" -lt $W ] && [ "$top" -ge 0 ] && [ "$top" -lt $H ] || fail "the marker is off the chart: $box"
grep -q 'class="violation"' "$tmp/fail.dom" || fail "no violation class"

# 3. The screenshot: a PNG of the window's size, not a blank page.
[ "$(head -c 8 "$tmp/fail.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || fail "not a PNG"
dims=$(od -An -tu1 -j16 -N8 "$tmp/fail.png" | awk '{print $1*16777216+$2*65536+$3*256+$4 "x" $5*16777216+$6*65536+$7*256+$8}')
[ "$dims" = "${W}x${H}" ] || fail "screenshot is $dims, expected ${W}x${H}"
size=$(stat -c %s "$tmp/fail.png")
[ "$size" -gt 20000 ] || fail "screenshot of $size bytes: blank?"
echo "screenshot ${dims}, $size bytes; violation marker box (left,top,w,h) = $box"

# 4. A passing run: the same page with no violation, so no marker.
cargo sim replay --scenario lease --seed 1 --html "$tmp/pass.html" >"$tmp/pass.txt" 2>&1 || fail "unmutated lease seed 1 failed"
browse "$tmp/pass.html" --virtual-time-budget=5000 --dump-dom >"$tmp/pass.dom"
grep -q 'data-rendered="ok"' "$tmp/pass.dom" || fail "the passing run's page did not render"
grep -q 'data-violation-box="none"' "$tmp/pass.dom" || fail "a passing run's page reports a marker"
grep -q 'id="violation"' "$tmp/pass.dom" && fail "a passing run's page has a violation marker"
echo "timeline test passed"
