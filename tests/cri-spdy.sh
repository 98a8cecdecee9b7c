#!/bin/bash
# CRI streaming (Exec, Attach, PortForward) driven by the real crictl of cri-tools v1.26.1
# (built from the tarball beside the project, tests/cri-tools-build.sh), which speaks
# SPDY/3.1 as kubelet's clients up to 1.29 do: exec with and without stdin, exit codes,
# large output, attach, port-forward with curl through it; and that a client which stops
# reading leaves berthd's memory bounded, over SPDY and over WebSocket.
source "$(dirname "$0")/lib.sh"
plain_build_only
"$SRCDIR/tests/install-deps.sh" >/dev/null 2>&1 # docker-registry, skopeo, python3-websocket

TOOLS=$("$SRCDIR/tests/cri-tools-build.sh" 2>"$TEST_TMP/cri-tools-build.log")
case $? in
  0) ;;
  77) echo "1..0 # SKIP $(tail -1 "$TEST_TMP/cri-tools-build.log")"; exit 0 ;;
  *) echo "Bail out! building cri-tools failed:"; sed 's/^/# /' "$TEST_TMP/cri-tools-build.log" | tail -30; exit 1 ;;
esac
tap_plan 39

PY=/usr/bin/python3
make_busybox_image "$TEST_TMP/busybox.tar"
registry_start reg || true
cat >"$TEST_TMP/berthd.conf" <<CONF
[registry."$REG"]
plain-http=true
CONF
export BERTH_DATADIR=$SRCDIR/data
berthd_start spdy -- --config "$TEST_TMP/berthd.conf" || true
crictl () {
  timeout 120 "$TOOLS/crictl" --runtime-endpoint "unix://$BERTH_SOCK" --image-endpoint "unix://$BERTH_SOCK" \
    --timeout 60s "$@"
}
# exec_url CMD-JSON: the streaming URL of an Exec in the web container (for WebSocket).
mkdir -p "$TEST_TMP/stubs"
$PY -m grpc_tools.protoc -I"$SRCDIR/core/services/cri" --python_out="$TEST_TMP/stubs" --grpc_python_out="$TEST_TMP/stubs" \
  "$SRCDIR/core/services/cri/api.proto" || { echo "Bail out! grpc_tools cannot compile core/services/cri/api.proto"; exit 1; }
exec_url () {
  $PY "$SRCDIR/tests/cri-client.py" "$TEST_TMP/stubs" "$BERTH_SOCK" RuntimeService Exec \
    "{\"container_id\": \"$WEB\", \"cmd\": $1, \"stdout\": true, \"stderr\": true}" |
    $PY -c 'import json, sys; print(json.load(sys.stdin)["url"])'
}
rss_kb () { awk '/^VmRSS:/ { print $2 }' "/proc/$BERTHD_PID/status"; }

check "skopeo puts busybox into the loopback registry" registry_put "$TEST_TMP/busybox.tar" "$REG/busybox:latest"
check "crictl pull" crictl pull "$REG/busybox:latest"

# A pod on the host's network: port forwarding reaches its loopback.
MARK=${TEST_TMP##*/}
HTTP_PORT=$(free_port)
mkdir -p "$TEST_TMP/logs"
cat >"$TEST_TMP/pod.json" <<JSON
{"metadata": {"name": "spdy-$MARK", "uid": "uid-$MARK", "namespace": "test", "attempt": 0},
 "log_directory": "$TEST_TMP/logs",
 "linux": {"security_context": {"namespace_options": {"network": 2}}}}
JSON
container_json () { # NAME COMMAND-JSON
  cat <<JSON
{"metadata": {"name": "$1"}, "image": {"image": "$REG/busybox:latest"}, "command": $2, "log_path": "$1.log"}
JSON
}
WWW=/www-$MARK
container_json web '["sh", "-c", "mkdir -p '$WWW' && echo hello-over-spdy >'$WWW'/index.html && exec httpd -f -p '$HTTP_PORT' -h '$WWW'"]' \
  >"$TEST_TMP/web.json"
container_json tick '["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do echo tick-$i; echo tock-$i >&2; sleep 1; done"]' \
  >"$TEST_TMP/tick.json"
POD=$(crictl runp "$TEST_TMP/pod.json")
expect_match "crictl runp: a pod on the host's network" '^[0-9a-f]{64}$' "$POD"
WEB=$(crictl create "$POD" "$TEST_TMP/web.json" "$TEST_TMP/pod.json")
check "crictl create and start a container" crictl start "$WEB"

# ---- exec ----
expect_eq "crictl exec -s (ExecSync)" sync-ok "$(crictl exec -s "$WEB" echo sync-ok 2>&1)"
expect_eq "crictl exec over SPDY: stdout" spdy-out "$(crictl exec "$WEB" sh -c 'echo spdy-out; echo spdy-err >&2' 2>/dev/null)"
expect_eq "…stderr on its own stream" spdy-err "$(crictl exec "$WEB" sh -c 'echo spdy-out; echo spdy-err >&2' 2>&1 >/dev/null)"
out=$(crictl exec "$WEB" sh -c 'exit 3' 2>&1); rc=$?
expect_match "…a non-zero exit is reported (v4 status with its ExitCode cause)" "exit code 3" "$out"
check "…and crictl fails" test "$rc" -ne 0
expect_eq "crictl exec -i: piped stdin reaches the command, its end too" "$(printf 'one\ntwo')" \
  "$(printf 'one\ntwo\n' | crictl exec -i "$WEB" cat 2>&1)"
expect_eq "…stdin of 3 MB, counted inside" 3000000 \
  "$(head -c 3000000 /dev/zero | crictl exec -i "$WEB" wc -c 2>&1 | tr -d ' ')"
expect_eq "output of 5 MB comes whole" 5000000 "$(crictl exec "$WEB" head -c 5000000 /dev/zero 2>/dev/null | wc -c)"
out=$(crictl exec "$WEB" sh -c 'for i in $(seq 20); do echo line-$i; done' 2>&1)
expect_eq "a second stream on the same server, in order" "$(seq 20 | sed 's/^/line-/')" "$out"

# ---- a terminal: crictl exec -it on a tmux window, resized ----
S=berth-spdy-$$
tmux new-session -d -s "$S" -x 100 -y 30 \
  "$TOOLS/crictl --runtime-endpoint unix://$BERTH_SOCK exec -it $WEB sh; sleep 30"
expect_match "crictl exec -it: a shell prompt on a terminal" "/ #" "$(tmux_wait "$S" "/ #")"
# crictl sends the window's size once the session is up, and the prompt can come first:
# until that resize lands, the pty is 0x0 (busybox's stty then fails), so ask again.
for try in 1 2 3 4 5 6; do
  tmux send-keys -t "$S" "clear; tty; stty size" Enter
  screen=$(tmux_wait "$S" "^30 100" 5)
  printf '%s' "$screen" | grep -q "^30 100" && break
done
expect_match "…its stdin is a pty" "/dev/pts/" "$screen"
expect_match "…of the window's size (the first resize event)" "^30 100" "$screen"
tmux resize-window -t "$S" -x 120 -y 40
sleep 1
tmux send-keys -t "$S" "clear; stty size" Enter
expect_match "…resizing the window resizes it (stty size)" "^40 120" "$(tmux_wait "$S" "^40 120")"
tmux send-keys -t "$S" "exit 4" Enter
expect_match "…exit ends crictl with the shell's code" "exit code 4" "$(tmux_wait "$S" "exit code 4")"
tmux kill-session -t "$S" 2>/dev/null

# ---- attach ----
TICK=$(crictl create "$POD" "$TEST_TMP/tick.json" "$TEST_TMP/pod.json")
check "a container printing ticks starts" crictl start "$TICK"
out=$(crictl attach "$TICK" 2>"$TEST_TMP/attach.err")
expect_match "crictl attach: the container's stdout until it exits" "tick-[0-9]+.*tick-10" "$(echo $out)"
expect_match "…its stderr on stderr" "tock-10" "$(cat "$TEST_TMP/attach.err")"

# ---- attach with stdin ----
cat >"$TEST_TMP/echo.json" <<JSON
{"metadata": {"name": "echo"}, "image": {"image": "$REG/busybox:latest"}, "log_path": "echo.log",
 "command": ["sh", "-c", "while read l; do echo got:\$l; done; echo stdin-ended"], "stdin": true, "stdin_once": true}
JSON
ECHO=$(crictl create "$POD" "$TEST_TMP/echo.json" "$TEST_TMP/pod.json")
check "a container created with stdin (stdin_once) starts" crictl start "$ECHO"
sleep 1
out=$(printf 'one\ntwo\n' | crictl attach -i "$ECHO" 2>&1)
expect_match "crictl attach -i: piped stdin reaches the container, its end ends the container's stdin" \
  "got:one got:two stdin-ended" "$(echo $out)"
expect_match "…attaching stdin to a container created without it: refused" "not created with stdin" \
  "$(echo x | crictl attach -i "$WEB" 2>&1)"
cat >"$TEST_TMP/shell.json" <<JSON
{"metadata": {"name": "shell"}, "image": {"image": "$REG/busybox:latest"}, "log_path": "shell.log",
 "command": ["sh"], "stdin": true, "tty": true}
JSON
SHELL_C=$(crictl create "$POD" "$TEST_TMP/shell.json" "$TEST_TMP/pod.json")
check "a container with a terminal and stdin starts" crictl start "$SHELL_C"
sleep 1
S=berth-spdy-attach-$$
tmux new-session -d -s "$S" -x 90 -y 25 "$TOOLS/crictl --runtime-endpoint unix://$BERTH_SOCK attach -it $SHELL_C; sleep 30"
sleep 2
tmux send-keys -t "$S" 'echo hi-$((6*7))' Enter
expect_match "crictl attach -it: typed keys reach the container's terminal, its output comes back" "^hi-42" \
  "$(tmux_wait "$S" "^hi-42")"
tmux resize-window -t "$S" -x 110 -y 35
sleep 1
tmux send-keys -t "$S" "stty size" Enter
expect_match "…resizing the window resizes the container's terminal" "^35 110" "$(tmux_wait "$S" "^35 110")"
tmux kill-session -t "$S" 2>/dev/null

# ---- attach to containers created without a log path (critest's case): their output ----
# ---- reaches Attach through the FIFO their shim writes ----
cat >"$TEST_TMP/echo-nolog.json" <<JSON
{"metadata": {"name": "echo-nolog"}, "image": {"image": "$REG/busybox:latest"},
 "command": ["sh", "-c", "echo before-attach; while read l; do echo got:\$l; echo err:\$l >&2; done; echo stdin-ended"],
 "stdin": true, "stdin_once": true}
JSON
ECHO_NOLOG=$(crictl create "$POD" "$TEST_TMP/echo-nolog.json" "$TEST_TMP/pod.json")
check "a container without a log path, with stdin (stdin_once), starts" crictl start "$ECHO_NOLOG"
sleep 1
out=$(printf 'one\ntwo\n' | crictl attach -i "$ECHO_NOLOG" 2>"$TEST_TMP/attach-nolog.err")
expect_eq "crictl attach -i, no log path: stdin reaches it, its output from the moment of attaching comes back" \
  "got:one got:two stdin-ended" "$(echo $out)"
expect_eq "…its stderr on stderr" "err:one err:two" "$(echo $(grep '^err:' "$TEST_TMP/attach-nolog.err"))"
cat >"$TEST_TMP/shell-nolog.json" <<JSON
{"metadata": {"name": "shell-nolog"}, "image": {"image": "$REG/busybox:latest"},
 "command": ["sh"], "stdin": true, "tty": true}
JSON
SHELL_NOLOG=$(crictl create "$POD" "$TEST_TMP/shell-nolog.json" "$TEST_TMP/pod.json")
check "a container without a log path, with a terminal and stdin, starts" crictl start "$SHELL_NOLOG"
sleep 1
S=berth-spdy-attach-nolog-$$
tmux new-session -d -s "$S" -x 90 -y 25 "$TOOLS/crictl --runtime-endpoint unix://$BERTH_SOCK attach -it $SHELL_NOLOG; sleep 30"
sleep 2
tmux send-keys -t "$S" 'echo hi-$((6*8))' Enter
expect_match "crictl attach -it, no log path: typed keys reach its terminal, its output comes back" "^hi-48" \
  "$(tmux_wait "$S" "^hi-48")"
tmux kill-session -t "$S" 2>/dev/null

# ---- port forwarding ----
LP=$(free_port)
"$TOOLS/crictl" --runtime-endpoint "unix://$BERTH_SOCK" port-forward "$POD" "$LP:$HTTP_PORT" >"$TEST_TMP/pf.log" 2>&1 &
PF=$!
BACKGROUND_PIDS+=("$PF")
wait_port "$LP"
for _ in $(seq 50); do body=$(http_get "http://127.0.0.1:$LP/" 2>/dev/null) && break; sleep 0.2; done
expect_eq "crictl port-forward: curl through it reaches the pod's server" hello-over-spdy "${body:-}"
expect_eq "…again, a second connection on the same SPDY session" hello-over-spdy "$(http_get "http://127.0.0.1:$LP/" 2>&1)"
CLOSED=$(free_port)
LP2=$(free_port)
"$TOOLS/crictl" --runtime-endpoint "unix://$BERTH_SOCK" port-forward "$POD" "$LP2:$CLOSED" >"$TEST_TMP/pf2.log" 2>&1 &
PF2=$!
BACKGROUND_PIDS+=("$PF2")
wait_port "$LP2"
http_get "http://127.0.0.1:$LP2/" >/dev/null 2>&1
sleep 1
expect_match "…to a closed port: the error stream says so" "refused" "$(cat "$TEST_TMP/pf2.log")"
kill "$PF" "$PF2" 2>/dev/null
wait "$PF" "$PF2" 2>/dev/null

# ---- flow control: a client that stops reading ----
sleep 1
IDLE=$(rss_kb)
WS_URL=$(exec_url '["cat", "/dev/zero"]' | sed 's/^http:/ws:/')
timeout 60 $PY "$SRCDIR/tests/cri-stream.py" stall "$WS_URL" 14 >"$TEST_TMP/stall.out" 2>&1 &
STALL=$!
sleep 12
GROWN=$(rss_kb)
wait "$STALL"
diag "berthd RSS: idle ${IDLE} kB, with a stalled WebSocket reader ${GROWN} kB ($(cat "$TEST_TMP/stall.out"))"
check "a stalled WebSocket reader of cat /dev/zero: berthd within 64 MB of its idle RSS" test $((GROWN - IDLE)) -lt 65536
sleep 1
IDLE=$(rss_kb)
# crictl's stdout is a pipe nobody reads: it stops reading the connection.
crictl exec "$WEB" cat /dev/zero | sleep 15 &
STALL=$!
sleep 12
GROWN=$(rss_kb)
diag "berthd RSS: idle ${IDLE} kB, with a stalled SPDY reader ${GROWN} kB"
check "a stalled SPDY reader of cat /dev/zero: berthd within 64 MB of its idle RSS" test $((GROWN - IDLE)) -lt 65536
wait "$STALL" 2>/dev/null
check "berthd still answers" crictl version

crictl stopp "$POD" >/dev/null 2>&1
check "crictl rmp" crictl rmp "$POD"
tests_done
