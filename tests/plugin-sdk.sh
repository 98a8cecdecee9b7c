#!/bin/bash
# A third party builds plugins against the *installed* SDK only (headers, berth-plugin-1.pc,
# berth-snapshotter-1.pc): examples/snapshotter-copyup, a real snapshotter, builds out of
# tree with its own Makefile, and the installed berthd loads it; a plugin claiming a newer
# ABI is refused, naming both versions. The build is kept in $BUILDDIR/tests/sdk for
# tests/snapshotter-copyup.sh, which runs containerd's snapshotter suite on it.
source "$(dirname "$0")/lib.sh"
tap_plan 7

SDK=$BUILDDIR/tests/sdk
rm -rf "$SDK"
mkdir -p "$SDK/plugins" "$SDK/pc"
DEST=$SDK/dest
if make -C "$BUILDDIR" install DESTDIR="$DEST" >"$TEST_TMP/install.log" 2>&1; then
  ok "make install DESTDIR=… works"
else
  not_ok "make install DESTDIR=… works"; sed 's/^/#   /' "$TEST_TMP/install.log" | tail -20
fi
prefix=$(sed -n 's/^prefix=//p' "$BUILDDIR/core/berth-plugin-1.pc")
libdir=$(pkg-config --variable=libdir "$BUILDDIR/core/berth-plugin-1.pc")
# The install went to a staging dir: point its .pc files at where it really is.
for pc in berth-plugin-1 berth-snapshotter-1; do
  sed "s|^prefix=.*|prefix=$DEST$prefix|" "$DEST$libdir/pkgconfig/$pc.pc" >"$SDK/pc/$pc.pc"
done
export PKG_CONFIG_PATH=$SDK/pc
check "pkg-config finds berth-plugin-1 and berth-snapshotter-1 in the installed tree" \
  pkg-config --exists berth-plugin-1 berth-snapshotter-1
check "the installed headers include berth-version.h and berth-snapshotter-base.h" \
  test -f "$DEST$prefix/include/berth-1/berth/berth-version.h" -a -f "$DEST$prefix/include/berth-1/berth/berth-snapshotter-base.h"

# Only the installed SDK: the example's own Makefile, a copy of its dir, nothing from the
# source tree on the include path; -Werror so a warning in a public header fails here.
cp -r "$SRCDIR/examples/snapshotter-copyup" "$SDK/copyup"
check "examples/snapshotter-copyup builds out of tree from the installed SDK" \
  make -C "$SDK/copyup" CFLAGS="-O2 -Wall -Wextra -Wno-unused-parameter -Werror"
cp "$SDK/copyup/copyup.so" "$SDK/plugins/"

# A plugin compiled against a newer minor than this berth: refused before it runs.
cat >"$TEST_TMP/newer.c" <<'C'
#include <berth/berth.h>
static GObject *init (BerthPluginContext *c, GError **e) { return NULL; }
G_MODULE_EXPORT const BerthPluginDescriptor berth_plugin_descriptor = {
  .major_version = BERTH_MAJOR_VERSION, .minor_version = BERTH_MINOR_VERSION + 1,
  .type = "io.example.future.v1", .name = "future", .init = init,
};
C
check "a plugin claiming a newer minor ABI builds" \
  cc -Wall -Werror -Wno-unused-parameter -shared -fPIC -o "$SDK/plugins/future.so" "$TEST_TMP/newer.c" \
  $(pkg-config --cflags --libs berth-plugin-1)

out=$(LD_LIBRARY_PATH=$DEST$libdir "$DEST$prefix/sbin/berthd" --config /dev/null --root "$TEST_TMP/root" \
      --state "$TEST_TMP/state" --plugin-dir "$SDK/plugins" --libexec-dir "$DEST$prefix/libexec/berth" --list-plugins 2>&1)
expect_match "the installed berthd loads copyup from its plugin dir" "io.containerd.snapshotter.v1 +copyup +ok" "$out"
major=$(sed -n 's/^#define BERTH_MAJOR_VERSION //p' "$SRCDIR/core/berth/berth-version.h")
minor=$(sed -n 's/^#define BERTH_MINOR_VERSION //p' "$SRCDIR/core/berth/berth-version.h")
expect_match "it refuses the newer-minor plugin, naming both versions" \
  "future.so: plugin built against berth $major\.$((minor + 1)), but this berthd is $major\.$minor" "$out"
rm -f "$SDK/plugins/future.so"
tests_done
