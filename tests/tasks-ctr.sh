#!/bin/bash
# Containers and tasks through the real ctr with real runc and crun: output and exit
# codes, detached tasks, kill and delete, bad input, and a berthd killed with -9 while
# containers run (they keep running; exits that happen meanwhile are not lost).
source "$(dirname "$0")/lib.sh"
require_plugins local walking overlayfs oci
tap_plan 49
"$SRCDIR/tests/install-deps.sh" >/dev/null 2>&1 # binds hugetlb to v1 where crun needs it

make_busybox_image "$TEST_TMP/busybox.tar"
berthd_start tasks || true
IMAGE=docker.io/library/busybox:latest
bctr images import "$TEST_TMP/busybox.tar" >/dev/null
RUN="timeout 60 ctr --address $BERTH_SOCK run --rm"

bctr events >"$TEST_TMP/events.out" 2>&1 &
EVENTS_PID=$!
sleep 0.5
expect_eq "ctr run --rm … echo hello prints hello (runc)" hello "$($RUN $IMAGE t-hello echo hello 2>&1)"
$RUN $IMAGE t-exit sh -c 'exit 7'
expect_eq "the exit code propagates (sh -c 'exit 7' → 7)" 7 "$?"
expect_eq "ctr run --rm --runc-binary crun prints hello" hello "$($RUN --runc-binary crun $IMAGE t-crun echo hello 2>&1)"
$RUN --runc-binary crun $IMAGE t-crun-exit sh -c 'exit 3'
expect_eq "…and crun's exit code propagates too" 3 "$?"
sleep 0.5
kill "$EVENTS_PID" 2>/dev/null; wait "$EVENTS_PID" 2>/dev/null
expect_match "ctr events saw /tasks/exit of t-exit with status 7" '/tasks/exit \{"container_id":"t-exit".*"exit_status":7' "$(cat "$TEST_TMP/events.out")"
expect_match "…and /tasks/create, /tasks/start, /tasks/delete" "/tasks/create.*/tasks/start.*/tasks/delete" "$(tr '\n' ' ' <"$TEST_TMP/events.out")"
expect_none "--rm left no container" '' bctr containers ls -q
expect_eq "…and no snapshot but the image's" 1 "$(bctr snapshots ls | tail -n +2 | wc -l)"
expect_eq "…and no rootfs mount" "" "$(grep " $BERTH_STATE" /proc/self/mounts)"

# ctr run --rootfs DIR: no snapshot, no rootfs mounts and an absolute root.path in the spec,
# as dockerd runs containers on its own graph driver: the task runs in DIR (as containerd).
mkdir -p "$TEST_TMP/own-root/bin"
cp "$(command -v busybox)" "$TEST_TMP/own-root/bin/busybox"
ln -s busybox "$TEST_TMP/own-root/bin/cat"
echo from-own-root >"$TEST_TMP/own-root/marker"
expect_eq "ctr run --rootfs DIR (absolute root.path, no rootfs mounts) runs in DIR" from-own-root \
  "$($RUN --rootfs "$TEST_TMP/own-root" t-own-root /bin/cat /marker 2>&1)"
expect_eq "…and left no mount on DIR" 0 "$(grep -c " $TEST_TMP/own-root" /proc/self/mounts)"

check "ctr run -d starts a detached sleeper" bctr run -d $IMAGE t-sleep sleep 300
expect_match "ctr tasks ls shows it RUNNING" "t-sleep +[0-9]+ +RUNNING" "$(bctr tasks ls)"
pid=$(bctr tasks ls | awk '$1 == "t-sleep" {print $2}')
expect_match "its pid is a real sleep process" "sleep" "$(cat /proc/$pid/cmdline 2>/dev/null | tr '\0' ' ')"
out=$(bctr run -d $IMAGE t-sleep sleep 1 2>&1) && not_ok "a second container with the same id is refused" \
  || expect_match "a second container with the same id is refused" "already exists" "$out"
out=$(bctr containers rm t-sleep 2>&1) && not_ok "a container with a live task cannot be removed" \
  || expect_match "a container with a live task cannot be removed" "non stopped|task" "$out"

EXEC="timeout 60 ctr --address $BERTH_SOCK tasks exec"
expect_eq "ctr tasks exec runs a process in the container" hi "$($EXEC --exec-id e1 t-sleep echo hi 2>&1)"
$EXEC --exec-id e2 t-sleep sh -c 'exit 5'
expect_eq "…and its exit code propagates" 5 "$?"
$EXEC --exec-id long t-sleep sleep 60 &
EXEC_PID=$!
sleep 1
out=$($EXEC --exec-id long t-sleep true 2>&1) && not_ok "a second exec with the same id is refused" \
  || expect_match "a second exec with the same id is refused" "already exists" "$out"
bctr tasks kill --exec-id long -s KILL t-sleep >/dev/null
wait "$EXEC_PID"
expect_eq "killing an exec ends it with its signal" 137 "$?"
bctr run -d --runc-binary crun $IMAGE t-crun-exec sleep 60 >/dev/null
expect_eq "exec works under crun too" hi "$($EXEC --exec-id e1 t-crun-exec echo hi 2>&1)"
bctr tasks kill -s KILL t-crun-exec >/dev/null; sleep 0.5; bctr tasks rm t-crun-exec >/dev/null; bctr containers rm t-crun-exec >/dev/null

bctr run -d --memory-limit 33554432 $IMAGE t-mem sleep 60 >/dev/null
metrics=$(bctr tasks metrics t-mem)
expect_match "ctr tasks metrics shows the memory limit the container got" "memory.limit_in_bytes +33554432" "$metrics"
expect_match "…its pids" "pids.current +1" "$metrics"
expect_match "…and its CPU time" "cpuacct.usage +[1-9][0-9]*" "$metrics"
# ctr 1.6 has no "tasks update": Tasks.Update with the OCI LinuxResources as JSON.
check "Tasks.Update raises the memory limit" "$SRCDIR/tests/grpc-call.py" "$BERTH_SOCK" /containerd.services.tasks.v1.Tasks/Update \
  1=t-mem "2={" 1=types.containerd.io/opencontainers/runtime-spec/1/LinuxResources '2={"memory":{"limit":67108864}}' "}"
expect_match "…and the container's cgroup has the new limit" "memory.limit_in_bytes +67108864" "$(bctr tasks metrics t-mem)"
bctr tasks kill -s KILL t-mem >/dev/null; sleep 0.5; bctr tasks rm t-mem >/dev/null; bctr containers rm t-mem >/dev/null

# ctr run -t: an interactive shell on a terminal, driven through tmux.
screen=$(tty_session 100 30 "ctr --address $BERTH_SOCK run -t --rm $IMAGE t-tty sh" 'echo $((6*7)); stty size' \
  "^[0-9]+ [0-9]+$" exit)
expect_match "ctr run -t gives an interactive shell" "^42$" "$screen"
expect_match "…on a terminal sized like the client's" "^30 100$" "$screen"

# ctr tasks exec -t: a shell on its own terminal inside the running container.
screen=$(tty_session 80 20 "ctr --address $BERTH_SOCK tasks exec -t --exec-id e-tty t-sleep sh" \
  'echo $((6*7)); stty size' "^[0-9]+ [0-9]+$" exit)
expect_match "ctr tasks exec -t gives an interactive shell" "^42$" "$screen"
expect_match "…on a terminal sized like the client's" "^20 80$" "$screen"

check "ctr tasks pause" bctr tasks pause t-sleep
expect_match "…the task shows PAUSED" "t-sleep +[0-9]+ +PAUSED" "$(bctr tasks ls)"
check "ctr tasks resume" bctr tasks resume t-sleep
expect_match "ctr tasks ps lists the container's init pid" "^$pid " "$(bctr tasks ps t-sleep)"

# Restart recovery: two running, one that exits while berthd is down.
bctr run -d $IMAGE t-alive sleep 300 >/dev/null
bctr run -d $IMAGE t-dies sh -c 'sleep 2; exit 42' >/dev/null
bctr run -d $IMAGE t-orphan sleep 300 >/dev/null
orphan_pid=$(bctr tasks ls | awk '$1 == "t-orphan" {print $2}')
berthd_stop KILL
# A shim that dies with berthd down leaves its container running unsupervised.
kill -KILL $(pgrep -f "berth-shim .*/default/t-orphan ") 2>/dev/null
sleep 3
expect_match "with berthd dead the containers still run" "sleep" "$(cat /proc/$pid/cmdline 2>/dev/null | tr '\0' ' ')"
berthd_start tasks || true
tasks=$(bctr tasks ls)
expect_match "after restart t-sleep is RUNNING" "t-sleep +[0-9]+ +RUNNING" "$tasks"
expect_match "…and so is t-alive" "t-alive +[0-9]+ +RUNNING" "$tasks"
expect_match "…and t-dies, which exited meanwhile, is STOPPED" "t-dies +[0-9]+ +STOPPED" "$tasks"
expect_match "t-orphan, whose shim died, is STOPPED" "t-orphan +[0-9]+ +STOPPED" "$tasks"
# (Its parent is gone, so a killed process may linger as a zombie of this machine's init.)
expect_eq "…its container was killed, not left unsupervised" gone \
  "$(awk '/^State:/ {print ($2 == "Z" ? "gone" : "alive")}' /proc/$orphan_pid/status 2>/dev/null || echo gone)"
expect_eq "…its root filesystem unmounted" "" "$(grep "/t-orphan/" /proc/self/mounts)"
expect_match "…and ctr tasks rm reports exit status 255, as containerd does" "255" "$(bctr tasks rm t-orphan 2>&1)"
expect_eq "…leaving nothing in the state dir" "" "$(ls -d "$BERTH_STATE"/*/default/t-orphan 2>/dev/null)"
# sleep as PID 1 ignores SIGTERM, as any container init without a handler does.
check "ctr tasks kill -s KILL t-sleep" bctr tasks kill -s KILL t-sleep
sleep 1
expect_match "it reports its exit" "t-sleep +[0-9]+ +STOPPED" "$(bctr tasks ls)"
out=$(bctr tasks rm t-dies 2>&1)
expect_match "ctr tasks rm t-dies reports the real exit status 42" "42" "$out"
out=$(bctr tasks kill t-dies 2>&1) && not_ok "kill of a deleted task fails" || expect_match "kill of a deleted task fails: not found" "not found" "$out"
bctr tasks kill -s KILL t-alive >/dev/null; sleep 1
for c in t-sleep t-alive t-dies t-orphan; do bctr tasks rm "$c" >/dev/null 2>&1; bctr containers rm "$c" >/dev/null 2>&1; bctr snapshots rm "$c" >/dev/null 2>&1; done
expect_none "everything cleaned up: no containers" '' bctr containers ls -q
expect_eq "…no shims left" "" "$(pgrep -f "berth-shim $BERTH_STATE" || true)"
tests_done
