#!/bin/bash
# SIGHUP (systemd's ExecReload): berthd re-reads its config file and applies what can
# change at runtime — log-level, gc-interval, the metrics endpoint — warns about what
# takes a restart, keeps its config when the new one does not load, and tells systemd
# RELOADING=1 … READY=1 around it.
source "$(dirname "$0")/lib.sh"
tap_plan 20

series () { printf '%s\n' "$1" | awk -v s="$2" 'index($0, s " ") == 1 {print $2; found=1} END {if (!found) print 0}'; }
# wait_for SECONDS COMMAND…: until COMMAND succeeds.
wait_for () {
  local i n=$(($1 * 10)); shift
  for i in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}
log_has () { grep -Eq -- "$1" "$BERTHD_LOG"; }
reload () { kill -HUP "$BERTHD_PID"; }
endpoint_down () { ! http_get "$1" >/dev/null 2>&1; }
debug_lines_for_version () { bctr version >/dev/null && log_has "connection [0-9]+ accepted"; }

# systemd's notify socket, played by a datagram listener that logs one line per message.
NOTIFY_SOCK=$TEST_TMP/notify.sock
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a") as log:
    while True:
        log.write(s.recv(4096).decode().replace("\n", " ") + "\n")
        log.flush()
' "$NOTIFY_SOCK" "$TEST_TMP/notify.log" &
NOTIFY_PID=$!
wait_for 5 test -S "$NOTIFY_SOCK"

CONF=$TEST_TMP/berthd.conf
PORT=$(free_port) PORT2=$(free_port)
URL=http://127.0.0.1:$PORT/v1/metrics
printf '[berthd]\nlog-level = warning\ngc-interval = 0\n' >"$CONF"
NOTIFY_SOCKET=$NOTIFY_SOCK BERTH_LOG_LEVEL= berthd_start reload -- --config "$CONF" || true
wait_for 5 grep -q READY=1 "$TEST_TMP/notify.log"
expect_match "berthd tells systemd READY=1 at startup" "^READY=1" "$(cat "$TEST_TMP/notify.log")"
if http_get "$URL" >/dev/null 2>&1; then not_ok "no metrics endpoint before the reload"; else ok "no metrics endpoint before the reload"; fi
bctr version >/dev/null
if log_has "connection [0-9]+ accepted"; then not_ok "at log-level warning no debug lines"; else ok "at log-level warning no debug lines"; fi

printf '[berthd]\nlog-level = debug\ngc-interval = 1\n\n[metrics]\naddress = 127.0.0.1:%s\n' "$PORT" >"$CONF"
reload
check "after SIGHUP the metrics endpoint answers" wait_for 10 http_get "$URL"
expect_match "…and the log says what changed" "reload: log-level debug \\(was warning\\)" "$(cat "$BERTHD_LOG")"
check "…and the new log-level applies: debug lines appear" wait_for 5 debug_lines_for_version
sleep 2.5
runs=$(series "$(http_get "$URL")" berth_gc_runs_total)
if [ "$runs" -ge 1 ] 2>/dev/null; then ok "gc-interval = 1 applies: $runs collections since"; else not_ok "gc-interval = 1 applies (runs: $runs)"; fi
notify=$(tr '\n' ' ' <"$TEST_TMP/notify.log")
expect_match "systemd heard RELOADING=1 (with MONOTONIC_USEC) and then READY=1" \
  "RELOADING=1 MONOTONIC_USEC=[0-9]+ +READY=1" "$notify"

printf '[berthd]\nlog-level = debug\ngc-interval = 0\nmax-message-size = 8M\ndefault-snapshotter = btrfs\n\n[metrics]\naddress = 127.0.0.1:%s\n\n[plugin.snapshotter.overlayfs]\nsync = true\n' "$PORT" >"$CONF"
reload
check "keys that cannot change are named" wait_for 5 grep -q "reload: max-message-size changed; that takes a restart of berthd" "$BERTHD_LOG"
expect_match "…default-snapshotter too" "reload: default-snapshotter changed; that takes a restart" "$(cat "$BERTHD_LOG")"
expect_match "…and a plugin's group" "reload: \\[plugin.snapshotter.overlayfs\\] changed; that takes a restart" "$(cat "$BERTHD_LOG")"
sleep 0.5 # a collection the old schedule started may still be finishing
before=$(series "$(http_get "$URL")" berth_gc_runs_total)
sleep 2
expect_eq "gc-interval = 0 stops scheduled collections" "$before" "$(series "$(http_get "$URL")" berth_gc_runs_total)"

printf '[berthd]\nlog-level = loud\n' >"$CONF"
reload
check "a config that does not load is logged with file:line" \
  wait_for 5 grep -q "reload: $CONF:2: log-level \"loud\" is not one of" "$BERTHD_LOG"
expect_match "…and the running configuration is kept" "keeping the running configuration" "$(cat "$BERTHD_LOG")"
expect_match "…berthd still serves ctr version" "Version: +[0-9]" "$(bctr version 2>&1)"
check "…and metrics" http_get "$URL"

printf '[berthd]\nlog-level = debug\n\n[metrics]\naddress = 127.0.0.1:%s\n' "$PORT2" >"$CONF"
reload
check "a new metrics address is served" wait_for 10 http_get "http://127.0.0.1:$PORT2/metrics"
if http_get "$URL" >/dev/null 2>&1; then not_ok "…and the old one is closed"; else ok "…and the old one is closed"; fi

printf '[berthd]\nlog-level = debug\n' >"$CONF"
reload
check "without [metrics] the endpoint goes away" wait_for 10 endpoint_down "http://127.0.0.1:$PORT2/metrics"

berthd_stop TERM
expect_eq "after all that, SIGTERM still exits 0" 0 "$BERTHD_EXIT"
kill "$NOTIFY_PID" 2>/dev/null; wait "$NOTIFY_PID" 2>/dev/null
tests_done
