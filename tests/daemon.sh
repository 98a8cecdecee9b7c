#!/bin/bash
# berthd as a process: plugin table, config errors, one daemon per root, clean shutdown,
# and a crashing plugin that cannot take the daemon down.
source "$(dirname "$0")/lib.sh"
tap_plan 12
BERTHD=$BUILDDIR/core/berthd

plugin_args=()
for d in "$BUILDDIR"/plugins/*/*/.libs; do [ -d "$d" ] && plugin_args+=(--plugin-dir "$d"); done
mkdir -p "$TEST_TMP/libexec" && ln -s "$BUILDDIR/core/berth-plugin-scanner" "$BUILDDIR/core/shim/berth-shim" "$TEST_TMP/libexec/"
table=$("$BERTHD" --config /dev/null --root "$TEST_TMP/lp/root" --state "$TEST_TMP/lp/state" \
        --libexec-dir "$TEST_TMP/libexec" --log-level error "${plugin_args[@]}" --list-plugins 2>&1)
intree=0 missing=""
for so in "$BUILDDIR"/plugins/*/*/.libs/*.so; do
  [ -e "$so" ] || continue
  intree=$((intree + 1))
  printf '%s\n' "$table" | grep -E " ok +$so\$" >/dev/null && continue
  # A plugin whose dependency configure left out (--disable-local: walking has no
  # content store) fails for that reason only.
  [ -n "${BERTH_DISABLED_PLUGINS:-}" ] && printf '%s\n' "$table" | grep -A1 -E " error +$so\$" \
    | grep -q "which no loadable plugin provides" && continue
  missing="$missing $so"
done
if [ "$intree" -gt 0 ] && [ -z "$missing" ]; then ok "--list-plugins shows all $intree in-tree plugins as ok"
else not_ok "--list-plugins shows every in-tree plugin as ok (missing:$missing)"; printf '%s\n' "$table" | sed 's/^/#   /'; fi

out=$("$BERTHD" --config /dev/null --root /srv/x --print-config)
expect_match "--print-config shows flags over defaults" "^root=/srv/x$" "$out"

printf '[berthd]\nroot=/x\nbogus=1\n' >"$TEST_TMP/bad.conf"
out=$("$BERTHD" --config "$TEST_TMP/bad.conf" --print-config 2>&1); rc=$?
expect_eq "a bad config exits 1" 1 "$rc"
expect_eq "…with one line naming file and line" "berthd: $TEST_TMP/bad.conf:3: unknown key \"bogus\" in [berthd]" "$out"

berthd_start main || true
check "the socket exists while it serves" test -S "$BERTH_SOCK"
check "the root is locked" test -f "$BERTH_ROOT/berthd.lock"
out=$("$BERTHD" --config /dev/null --root "$BERTH_ROOT" --state "$TEST_TMP/other-state" \
      --address "$TEST_TMP/other.sock" --plugin-dir /nonexistent 2>&1); rc=$?
expect_eq "a second berthd on the same root exits 1" 1 "$rc"
expect_match "…naming the running one's pid" "another berthd \\(pid $BERTHD_PID\\) is already using root" "$out"

berthd_stop TERM
expect_eq "SIGTERM: exit status 0" 0 "$BERTHD_EXIT"
left=$(ls "$BERTH_STATE/berthd.sock" "$BERTH_STATE/berthd.lock" "$BERTH_ROOT/berthd.lock" 2>/dev/null)
expect_eq "…and no socket or lock left behind" "" "$left"

# A plugin that crashes while loading is caught by the scanner; the daemon still serves.
mkdir -p "$TEST_TMP/evil"
cp "$BUILDDIR/tests/plugins/.libs/crash.so" "$TEST_TMP/evil/"
berthd_start evil -- --plugin-dir "$TEST_TMP/evil" || true
check "with a crashing plugin installed berthd still serves" test -S "$BERTH_SOCK"
expect_match "…and logs why that plugin was not loaded" "crash.so: crashed while loading \\(signal " "$(cat "$BERTHD_LOG")"
tests_done
