#!/bin/bash
# The plugin API reference builds with gtk-doc from the installed headers
# (docs/reference/build.sh, what configure --enable-gtk-doc runs) and documents the SDK's
# entry points.
source "$(dirname "$0")/lib.sh"
tap_plan 4
OUT=$TEST_TMP/ref
check "gtk-doc builds the reference" "$SRCDIR/docs/reference/build.sh" "$SRCDIR" "$OUT" 0
html=$(cat "$OUT"/html/*.html 2>/dev/null)
expect_match "the descriptor and the ABI check are documented" "BerthPluginDescriptor.*|BERTH_CHECK_VERSION" "$html"
expect_match "the snapshotter base library is documented" "berth_snap_store_open" "$html"
expect_match "symbols carry their Since: version" "class=\"since\">Since: <a [^>]*>0\.[0-9]+<" "$html"
tests_done
