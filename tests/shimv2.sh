#!/bin/bash
# The shimv2 runtime plugin with containerd's own shim: config routes io.containerd.runc.v2
# to Debian's containerd-shim-runc-v2, and the real ctr drives it through berthd: output
# and exit codes, terminal, exec, pids, pause/resume, metrics, kill, delete, events (the
# shim's own, through the ttrpc events endpoint), restart with live and dead shims, a
# shim killed under a call, and a runtime whose shim is not installed.
source "$(dirname "$0")/lib.sh"
require_plugins local walking overlayfs oci shimv2
SHIM=$(command -v containerd-shim-runc-v2 || true)
if [ -z "$SHIM" ]; then echo "1..0 # SKIP containerd-shim-runc-v2 is not installed"; exit 0; fi
tap_plan 45

# containerd-shim-runc-v2 keeps runc's state under /run/containerd/runc/NAMESPACE: a
# namespace of this run's own keeps it apart from any other user of that shim.
NS=shimv2-$$
make_busybox_image "$TEST_TMP/busybox.tar"
cat >"$TEST_TMP/berthd.conf" <<EOF
[plugin.runtime.shimv2]
runtimes = io.containerd.runc.v2=$SHIM
EOF
berthd_start shimv2 -- --config "$TEST_TMP/berthd.conf" || true
IMAGE=docker.io/library/busybox:latest
nctr () { ctr --address "$BERTH_SOCK" -n "$NS" "$@"; }
# The shims (and the containers under them) this test's daemon started, by pid.
our_shims () { pgrep -f "containerd-shim-runc-v2 .*-address $BERTH_SOCK( |$)" 2>/dev/null; }
shim_of () { pgrep -f "containerd-shim-runc-v2 -namespace $NS -id $1 -address $BERTH_SOCK( |$)" 2>/dev/null; }
stop_our_shims () {
  local shim
  for shim in $(our_shims); do kill -KILL $(pgrep -P "$shim" 2>/dev/null) "$shim" 2>/dev/null; done
}
trap 'stop_our_shims; tests_cleanup' EXIT
nctr images import "$TEST_TMP/busybox.tar" >/dev/null
RUN="timeout -s KILL 60 ctr --address $BERTH_SOCK -n $NS run --rm"

nctr events >"$TEST_TMP/events.out" 2>&1 &
EVENTS_PID=$!
sleep 0.5
expect_eq "ctr run --rm … echo hello prints hello through containerd-shim-runc-v2" hello "$($RUN $IMAGE s-hello echo hello 2>&1)"
expect_match "…which berthd started for it (not berth-shim)" "task $NS/s-hello created by $SHIM" "$(cat "$BERTHD_LOG")"
$RUN $IMAGE s-exit sh -c 'exit 7'
expect_eq "the exit code propagates (sh -c 'exit 7' → 7)" 7 "$?"
# ctr sends CloseIO once its stdin ends, if the task exists by then (hence the pause).
expect_eq "stdin reaches the container, its end too (CloseIO), and stdout comes back" "piped" \
  "$( (sleep 2; echo piped) | $RUN $IMAGE s-cat cat 2>&1)"
expect_eq "--rm left no container" "" "$(nctr containers ls -q)"
expect_eq "…no bundle" "" "$(ls "$BERTH_STATE"/io.containerd.runtime.v2.shimv2/"$NS" 2>/dev/null)"
expect_eq "…no rootfs mount" "" "$(grep " $BERTH_STATE" /proc/self/mounts)"
expect_eq "…and no shim" "" "$(our_shims)"

check "ctr run -d starts a detached sleeper" nctr run -d $IMAGE s-sleep sleep 300
expect_match "ctr tasks ls shows it RUNNING" "s-sleep +[0-9]+ +RUNNING" "$(nctr tasks ls)"
pid=$(nctr tasks ls | awk '$1 == "s-sleep" {print $2}')
expect_match "its pid is a real sleep process" "sleep" "$(tr '\0' ' ' </proc/$pid/cmdline 2>/dev/null)"
expect_match "…whose parent is containerd-shim-runc-v2" "containerd-shim-runc-v2" \
  "$(tr '\0' ' ' </proc/$(awk '{print $4}' /proc/$pid/stat)/cmdline 2>/dev/null)"
EXEC="timeout -s KILL 60 ctr --address $BERTH_SOCK -n $NS tasks exec"
expect_eq "ctr tasks exec runs a process in the container" hi "$($EXEC --exec-id e1 s-sleep echo hi 2>&1)"
$EXEC --exec-id e2 s-sleep sh -c 'exit 5'
expect_eq "…and its exit code propagates" 5 "$?"
expect_match "ctr tasks ps lists the init pid" "^$pid " "$(nctr tasks ps s-sleep)"
check "ctr tasks pause" nctr tasks pause s-sleep
expect_match "…the task shows PAUSED" "s-sleep +[0-9]+ +PAUSED" "$(nctr tasks ls)"
check "ctr tasks resume" nctr tasks resume s-sleep
expect_match "…RUNNING again" "s-sleep +[0-9]+ +RUNNING" "$(nctr tasks ls)"
metrics=$(nctr tasks metrics s-sleep 2>&1)
expect_match "ctr tasks metrics shows the shim's statistics (pids, memory)" "pids.current +1" "$metrics"

screen=$(tty_session 100 30 "ctr --address $BERTH_SOCK -n $NS run -t --rm $IMAGE s-tty sh" 'echo $((6*7)); stty size' \
  "^[0-9]+ [0-9]+$" exit)
expect_match "ctr run -t gives an interactive shell" "^42$" "$screen"
expect_match "…on a terminal sized like the client's" "^30 100$" "$screen"

check "ctr tasks kill -s KILL" nctr tasks kill -s KILL s-sleep
for _ in $(seq 50); do nctr tasks ls | grep -Eq "s-sleep +[0-9]+ +STOPPED" && break; sleep 0.2; done
expect_match "…the task is STOPPED" "s-sleep +[0-9]+ +STOPPED" "$(nctr tasks ls)"
expect_match "ctr tasks rm reports the signal's exit status" "137" "$(nctr tasks rm s-sleep 2>&1)"
nctr containers rm s-sleep >/dev/null

# The shim's own events reach berthd's bus through Events/Forward on the ttrpc socket
# (checked below with its /tasks/start in the log). Its /tasks/oom is not passed on: the
# core reads the OOM kill from the cgroup and publishes /tasks/oom once, as for berth-shim.
nctr run -d --memory-limit 16777216 $IMAGE s-oom sh -c 'sleep 1; dd if=/dev/zero of=/dev/null bs=64M count=1' >/dev/null
for _ in $(seq 100); do grep -q "/tasks/oom" "$TEST_TMP/events.out" && break; sleep 0.2; done
nctr tasks kill -s KILL s-oom >/dev/null 2>&1; sleep 0.5; nctr tasks rm s-oom >/dev/null 2>&1; nctr containers rm s-oom >/dev/null
kill "$EVENTS_PID" 2>/dev/null; wait "$EVENTS_PID" 2>/dev/null
events=$(cat "$TEST_TMP/events.out")
expect_match "the shim forwarded its events to berthd's ttrpc endpoint" "event $NS /tasks/start from a shim" "$(cat "$BERTHD_LOG")"
# With swap, a memory limit need not end in an OOM kill.
if [ "$(wc -l </proc/swaps)" -le 1 ]; then
  expect_eq "ctr events saw /tasks/oom of s-oom, once" 1 "$(grep -c '/tasks/oom {"container_id":"s-oom"' "$TEST_TMP/events.out")"
else
  skip "ctr events saw /tasks/oom of s-oom, once: this machine has swap"
fi
expect_match "…/tasks/exit of s-exit with status 7" '/tasks/exit \{"container_id":"s-exit".*"exit_status":7' "$events"
expect_eq "…and each task event once (no copy of berthd's own from the shim)" 1 "$(grep -c '/tasks/create {"container_id":"s-exit"' "$TEST_TMP/events.out")"

# A shim killed under a call: the waiting call ends, the task is reaped with the status
# `containerd-shim-runc-v2 delete` reports, and nothing of it is left.
nctr run -d $IMAGE s-crash sleep 300 >/dev/null
crash_pid=$(nctr tasks ls | awk '$1 == "s-crash" {print $2}')
timeout -s KILL 30 ctr --address "$BERTH_SOCK" -n "$NS" tasks exec --exec-id long s-crash sleep 300 \
  >"$TEST_TMP/crash-exec.out" 2>&1 &
EXEC_PID=$!
sleep 1
kill -KILL "$(shim_of s-crash)"
wait "$EXEC_PID"
rc=$?
expect_eq "an exec in flight ends, unsuccessfully, when its shim dies (not left waiting)" 1 \
  "$([ $rc -ne 0 ] && [ $rc -ne 137 ] && echo 1 || echo "status $rc")"
for _ in $(seq 50); do nctr tasks ls | grep -Eq "s-crash +[0-9]+ +STOPPED" && break; sleep 0.2; done
expect_match "…the task is STOPPED" "s-crash +[0-9]+ +STOPPED" "$(nctr tasks ls)"
expect_eq "…its container was killed" gone \
  "$(awk '/^State:/ {print ($2 == "Z" ? "gone" : "alive")}' /proc/$crash_pid/status 2>/dev/null || echo gone)"
expect_match "…ctr tasks rm reports its end" "137|255" "$(nctr tasks rm s-crash 2>&1)"
nctr containers rm s-crash >/dev/null
expect_eq "…leaving no bundle and no mount" "" \
  "$(ls "$BERTH_STATE"/io.containerd.runtime.v2.shimv2/"$NS" 2>/dev/null; grep "/s-crash/" /proc/self/mounts)"

# Restart: one task keeps running, one exits while berthd is down, one's shim dies.
nctr run -d $IMAGE s-alive sleep 300 >/dev/null
nctr run -d $IMAGE s-dies sh -c 'sleep 2; exit 42' >/dev/null
nctr run -d $IMAGE s-orphan sleep 300 >/dev/null
orphan_pid=$(nctr tasks ls | awk '$1 == "s-orphan" {print $2}')
berthd_stop KILL
kill -KILL "$(shim_of s-orphan)"
sleep 3
berthd_start shimv2 -- --config "$TEST_TMP/berthd.conf" || true
tasks=$(nctr tasks ls)
expect_match "after a restart s-alive is RUNNING" "s-alive +[0-9]+ +RUNNING" "$tasks"
expect_match "…s-dies, which exited meanwhile, is STOPPED" "s-dies +[0-9]+ +STOPPED" "$tasks"
expect_match "…and so is s-orphan, whose shim died" "s-orphan +[0-9]+ +STOPPED" "$tasks"
expect_eq "…its container was killed, not left unsupervised" gone \
  "$(awk '/^State:/ {print ($2 == "Z" ? "gone" : "alive")}' /proc/$orphan_pid/status 2>/dev/null || echo gone)"
expect_eq "exec still works in the task berthd reconnected to" hi "$($EXEC --exec-id e3 s-alive echo hi 2>&1)"
expect_match "ctr tasks rm s-dies reports its real exit status 42" "42" "$(nctr tasks rm s-dies 2>&1)"
nctr tasks kill -s KILL s-alive >/dev/null; sleep 1
for c in s-alive s-dies s-orphan; do nctr tasks rm "$c" >/dev/null 2>&1; nctr containers rm "$c" >/dev/null 2>&1; done
expect_eq "everything cleaned up: no containers" "" "$(nctr containers ls -q)"
expect_eq "…no shims" "" "$(our_shims)"
expect_eq "…no bundles" "" "$(ls "$BERTH_STATE"/io.containerd.runtime.v2.shimv2/"$NS" 2>/dev/null)"

out=$($RUN --runtime io.containerd.nosuch.v2 $IMAGE s-nosuch true 2>&1)
expect_eq "a runtime whose shim is not installed fails" 1 "$([ $? -ne 0 ] && echo 1)"
expect_match "…with NOT_FOUND naming the binary it looked for" "not found.*containerd-shim-nosuch-v2|containerd-shim-nosuch-v2.*not found" "$out"
nctr containers rm s-nosuch >/dev/null 2>&1
tests_done
