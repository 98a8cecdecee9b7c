#!/bin/bash
# A third party builds a plugin against the *installed* headers and berth-plugin-1.pc,
# and berthd finds, probes, configures and loads it.
source "$(dirname "$0")/lib.sh"
tap_plan 5

DEST=$TEST_TMP/dest
if make -C "$BUILDDIR" install DESTDIR="$DEST" >"$TEST_TMP/install.log" 2>&1; then
  ok "make install DESTDIR=… works"
else
  not_ok "make install DESTDIR=… works"; sed 's/^/#   /' "$TEST_TMP/install.log" | tail -20
fi
prefix=$(sed -n 's/^prefix=//p' "$BUILDDIR/core/berth-plugin-1.pc")
libdir=$(pkg-config --variable=libdir "$BUILDDIR/core/berth-plugin-1.pc")
# The install went to a staging dir: point its .pc at where it really is.
mkdir -p "$TEST_TMP/pc"
sed "s|^prefix=.*|prefix=$DEST$prefix|" "$DEST$libdir/pkgconfig/berth-plugin-1.pc" >"$TEST_TMP/pc/berth-plugin-1.pc"
export PKG_CONFIG_PATH=$TEST_TMP/pc
check "pkg-config finds berth-plugin-1 in the installed tree" pkg-config --exists berth-plugin-1

mkdir -p "$TEST_TMP/plugins"
# Only the installed headers: nothing from the source tree is on the include path.
check "the example builds out of tree" \
  cc -Wall -Wextra -Wno-unused-parameter -Werror -shared -fPIC -o "$TEST_TMP/plugins/example.so" "$SRCDIR/tests/example-plugin/example.c" \
  $(pkg-config --cflags --libs berth-plugin-1)

cat >"$TEST_TMP/berthd.conf" <<CONF
[berthd]
log-level=message
[plugin.io.example.greeter.v1.hello]
greeting=ahoy
CONF
out=$(LD_LIBRARY_PATH=$DEST$libdir "$DEST$prefix/sbin/berthd" --config "$TEST_TMP/berthd.conf" --root "$TEST_TMP/root" \
      --state "$TEST_TMP/state" --plugin-dir "$TEST_TMP/plugins" --libexec-dir "$DEST$prefix/libexec/berth" --list-plugins 2>&1)
expect_match "the installed berthd loads it" "io.example.greeter.v1 +hello +ok" "$out"
expect_match "it read its config group" "says: ahoy" "$out"
tests_done
