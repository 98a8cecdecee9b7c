# tests/lib.sh — shared helpers for integration tests (sourced by tests/*.sh).
# TAP output, temp dirs cleaned on exit, and a real berthd on a private root/state/socket.
set -u

BUILDDIR=${BERTH_TOP_BUILDDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
SRCDIR=${BERTH_TOP_SRCDIR:-$BUILDDIR}
TAP_N=0
TAP_FAILED=0
TEST_TMP=$(mktemp -d /tmp/berth-test.XXXXXX)
BERTHD_PIDS=()

tap_plan () { echo "1..$1"; }
ok () { TAP_N=$((TAP_N + 1)); echo "ok $TAP_N - $*"; }
not_ok () { TAP_N=$((TAP_N + 1)); TAP_FAILED=$((TAP_FAILED + 1)); echo "not ok $TAP_N - $*"; }
skip () { TAP_N=$((TAP_N + 1)); echo "ok $TAP_N # SKIP $*"; }
diag () { printf '# %s\n' "$@"; }
# check DESCRIPTION COMMAND...: one TAP line from a command's exit status; output kept as diagnostics on failure
check () {
  local desc=$1; shift
  local out
  if out=$("$@" 2>&1); then ok "$desc"; else not_ok "$desc"; printf '%s\n' "$out" | sed 's/^/#   /' | head -40; fi
}
# expect_eq DESCRIPTION EXPECTED ACTUAL
expect_eq () {
  if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1"; diag "expected: $2" "actual:   $3"; fi
}
# expect_match DESCRIPTION REGEX TEXT
expect_match () {
  if printf '%s' "$3" | grep -Eq -- "$2"; then ok "$1"; else not_ok "$1"; diag "expected to match: $2" "actual:"; printf '%s\n' "$3" | sed 's/^/#   /' | head -40; fi
}

tests_cleanup () {
  local pid
  for pid in "${BERTHD_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null && { for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done; kill -KILL "$pid" 2>/dev/null; }
  done
  # Containers' mounts and shims started by this test's daemons live under TEST_TMP.
  grep " $TEST_TMP" /proc/self/mounts 2>/dev/null | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
  rm -rf "$TEST_TMP"
}
trap tests_cleanup EXIT

tests_done () {
  echo "# $TAP_N tests, $TAP_FAILED failed"
  [ "$TAP_FAILED" -eq 0 ]
}
