#!/bin/bash
# berth as a distribution ships it: what `make install` puts where, man pages that render
# cleanly, unit files systemd accepts, socket activation, and sd_notify READY/STOPPING.
source "$(dirname "$0")/lib.sh"
tap_plan 12

# ---- make install into a DESTDIR ----
DEST=$TEST_TMP/dest
if make -C "$BUILDDIR" install DESTDIR="$DEST" >"$TEST_TMP/install.log" 2>&1; then
  ok "make install DESTDIR=… works"
else
  not_ok "make install DESTDIR=… works"; sed 's/^/#   /' "$TEST_TMP/install.log" | tail -20
fi
prefix=$(sed -n 's/^prefix = //p' "$BUILDDIR/Makefile")
expected=(
  "sbin/berthd" "bin/berth" "libexec/berth/berth-shim" "libexec/berth/berth-plugin-scanner" "lib/berth/modules/berth-image-archive.so" "lib/berth/modules/berth-registry-client.so" "lib/berth/modules/berth-http-fetch.so" "lib/berth/modules/berth-metrics-http.so" "lib/berth/modules/berth-cri-streaming.so"
  "include/berth-1/berth/berth.h" "include/berth-1/berth/berth-plugin.h" "lib/pkgconfig/berth-plugin-1.pc"
  "lib/libberth-1.so" "etc/berth/berthd.conf" "share/berth/seccomp/default.json"
  "lib/systemd/system/berthd.service" "lib/systemd/system/berthd.socket" "lib/tmpfiles.d/berth.conf"
  "share/man/man1/berth.1" "share/man/man5/berthd.conf.5" "share/man/man7/berth-plugins.7" "share/man/man8/berthd.8"
  "share/bash-completion/completions/berth"
)
for so in "$BUILDDIR"/plugins/*/*/.libs/*.so; do [ -e "$so" ] && expected+=("lib/berth/plugins/$(basename "$so")"); done
missing=()
for f in "${expected[@]}"; do [ -e "$DEST$prefix/$f" ] || missing+=("$f"); done
expect_eq "the install holds binaries, plugins, headers, .pc, config, seccomp profile, units, tmpfiles, man pages, completion" "" "${missing[*]}"
grep -q "^ExecStart=$prefix/sbin/berthd" "$DEST$prefix/lib/systemd/system/berthd.service"
expect_eq "…the installed unit runs the installed berthd" 0 "$?"

# ---- man pages: roff that groff renders without a warning ----
warnings=""
for page in "$DEST$prefix"/share/man/man*/*; do
  out=$(LC_ALL=C.UTF-8 groff -ww -z -man -Tutf8 "$page" 2>&1)
  [ -n "$out" ] && warnings+="$(basename "$page"): $out "
done
expect_eq "berth(1), berthd.conf(5), berth-plugins(7) and berthd(8) render without warnings (groff -ww)" "" "$warnings"
expect_match "man -l shows berth(1)'s commands" "image import" "$(MANWIDTH=100 man -l "$DEST$prefix/share/man/man1/berth.1" 2>&1)"
check "bash completion parses" bash -n "$DEST$prefix/share/bash-completion/completions/berth"

# ---- unit files ----
mkdir -p "$TEST_TMP/units"
sed "s|@sbindir@|$BUILDDIR/core|" "$SRCDIR/data/berthd.service.in" >"$TEST_TMP/units/berthd.service"
cp "$SRCDIR/data/berthd.socket" "$TEST_TMP/units/"
check "systemd-analyze verify accepts berthd.service and berthd.socket" \
  systemd-analyze verify --man=no "$TEST_TMP/units/berthd.service" "$TEST_TMP/units/berthd.socket"

# ---- socket activation ----
SOCK=$TEST_TMP/activated.sock
mkdir -p "$TEST_TMP/sa/libexec"
ln -s "$BUILDDIR/core/berth-plugin-scanner" "$BUILDDIR/core/shim/berth-shim" "$TEST_TMP/sa/libexec/"
plugin_args=()
for d in "$BUILDDIR"/plugins/*/*/.libs; do plugin_args+=(--plugin-dir "$d"); done
systemd-socket-activate -l "$SOCK" "$BUILDDIR/core/berthd" --config /dev/null --root "$TEST_TMP/sa/root" \
  --state "$TEST_TMP/sa/state" --libexec-dir "$TEST_TMP/sa/libexec" "${plugin_args[@]}" >"$TEST_TMP/sa/berthd.log" 2>&1 &
SA_PID=$!
BERTHD_PIDS+=("$SA_PID")
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
expect_match "systemd-socket-activate -l SOCK berthd: ctr version answers on the inherited socket" \
  "Revision: berth" "$(timeout 60 ctr --address "$SOCK" version 2>&1)"
expect_match "…berthd says it adopted the socket instead of binding" "serving on an activated socket" \
  "$(cat "$TEST_TMP/sa/berthd.log")"
kill -TERM "$SA_PID"; wait "$SA_PID" 2>/dev/null

# ---- sd_notify on a fake NOTIFY_SOCKET ----
NOTIFY=$TEST_TMP/notify.sock
python3 - "$NOTIFY" >"$TEST_TMP/notify.out" <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(120)
while True:
    msg = s.recv(4096).decode()
    print(msg.replace("\n", " "), flush=True)
    if "STOPPING=1" in msg:
        break
EOF
LISTENER=$!
BACKGROUND_PIDS+=("$LISTENER")
for _ in $(seq 50); do [ -S "$NOTIFY" ] && break; sleep 0.1; done
NOTIFY_SOCKET=$NOTIFY berthd_start notified || true
# READY=1 must come once the API serves: by then a client gets an answer.
for _ in $(seq 300); do grep -q "READY=1" "$TEST_TMP/notify.out" && break; sleep 0.1; done
expect_match "READY=1 arrives once berthd serves, with a STATUS" "READY=1.*STATUS=|STATUS=.*READY=1" "$(cat "$TEST_TMP/notify.out")"
expect_match "…and the API answers then" "Revision: berth" "$(bctr version 2>&1)"
berthd_stop TERM
wait "$LISTENER" 2>/dev/null
expect_match "SIGTERM makes berthd send STOPPING=1" "STOPPING=1" "$(cat "$TEST_TMP/notify.out")"

tests_done
