#!/bin/bash
# containerd 1.6.20's own conformance suites against berthd: snapshots/testsuite
# (SnapshotterSuite) on every snapshotter and content/testsuite (ContentSuite and the
# cross-namespace one) on the content store, through containerd's gRPC proxies
# (snapshots/proxy, content/proxy) — tests/go/suites. Each suite test is one TAP line.
# The suites run their tests in parallel and mount snapshots themselves: the Go program
# runs in a mount namespace of its own, so no mount outlives it.
source "$(dirname "$0")/lib.sh"
plain_build_only
require_plugins local overlayfs native ostree

source "$SRCDIR/tests/suites-lib.sh"
if ! out=$(suites_build 2>&1); then
  tap_plan 1; not_ok "building the suites' Go program"; printf '%s\n' "$out" | sed 's/^/#   /' | head -40
  exit 1
fi

# ostree keeps file-level dedup by hard links: see README, "containerd's suites".
declare -A KNOWN=()

berthd_start suites || { tap_plan 1; not_ok "berthd starts"; exit 1; }
suites_run "$TEST_TMP/go.log"
status=$?
suites_report "$TEST_TMP/go.log" "${!KNOWN[@]}"
echo "1..$TAP_N"
echo "# go test exited $status"
tests_done
