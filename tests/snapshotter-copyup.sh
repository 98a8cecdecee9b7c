#!/bin/bash
# containerd's snapshotter conformance suite (snapshots/testsuite, through its gRPC proxy)
# on examples/snapshotter-copyup, the snapshotter tests/plugin-sdk.sh built out of tree
# from the installed SDK, loaded into a private berthd from its own plugin dir.
source "$(dirname "$0")/lib.sh"
plain_build_only
SDK=$BUILDDIR/tests/sdk
if [ ! -f "$SDK/plugins/copyup.so" ]; then
  tap_plan 1; not_ok "the out-of-tree copyup.so exists (tests/plugin-sdk.sh builds it)"; exit 1
fi
source "$SRCDIR/tests/suites-lib.sh"
if ! out=$(suites_build 2>&1); then
  tap_plan 1; not_ok "building the suites' Go program"; printf '%s\n' "$out" | sed 's/^/#   /' | head -40
  exit 1
fi
libdir=$(pkg-config --variable=libdir "$BUILDDIR/core/berth-plugin-1.pc")
# copyup.so needs the installed libberth-snapshotter-1, not the build tree's.
export LD_LIBRARY_PATH=$SDK/dest$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
berthd_start copyup --plugin-dir "$SDK/plugins" || { tap_plan 1; not_ok "berthd starts"; exit 1; }
if bctr plugins ls | grep -Eq "io.containerd.snapshotter.v1 +copyup +.* ok"; then
  ok "berthd loaded copyup from $SDK/plugins"
else
  not_ok "berthd loaded copyup from $SDK/plugins"; bctr plugins ls | sed 's/^/#   /'
fi
suites_run "$TEST_TMP/go.log" -test.run '^TestSnapshotters$' -berth.snapshotters copyup
status=$?
suites_report "$TEST_TMP/go.log"
echo "1..$TAP_N"
echo "# go test exited $status"
tests_done
