#!/bin/bash
# OOM kills through the real ctr, runc and the kernel's OOM killer: a process that
# allocates past its container's memory limit is killed (exit status 137) and berthd
# publishes /tasks/oom {container_id} before its /tasks/exit, as containerd does (the
# core reads the kernel's oom_kill counter in the task's memory cgroup at each exit).
source "$(dirname "$0")/lib.sh"
require_plugins local walking overlayfs oci
tap_plan 11
"$SRCDIR/tests/install-deps.sh" >/dev/null 2>&1 # binds hugetlb to v1 where crun needs it

make_busybox_image "$TEST_TMP/busybox.tar"
berthd_start oom || true
IMAGE=docker.io/library/busybox:latest
bctr images import "$TEST_TMP/busybox.tar" >/dev/null
RUN="timeout 120 ctr --address $BERTH_SOCK run --rm"
LIMIT=$((32 * 1024 * 1024))
# dd reads 256 MiB of zeros into one buffer: every page of it is touched, 8 times the limit.
HOG="dd if=/dev/zero of=/dev/null bs=256M count=1"

# With swap, a memory limit need not end in an OOM kill (ctr sets no swap limit).
if [ "$(wc -l </proc/swaps)" -gt 1 ]; then
  for _ in $(seq 11); do skip "this machine has swap: a memory limit need not end in an OOM kill"; done
  tests_done; exit $?
fi

bctr events >"$TEST_TMP/events.out" 2>&1 &
EVENTS_PID=$!
sleep 0.5

$RUN --memory-limit $LIMIT $IMAGE t-oom $HOG >/dev/null 2>&1
expect_eq "a container allocating 8 times its memory limit is killed (exit status 137)" 137 "$?"
$RUN --memory-limit $LIMIT --runc-binary crun $IMAGE t-oom-crun $HOG >/dev/null 2>&1
expect_eq "…with crun too" 137 "$?"

# The same signal without the OOM killer: no /tasks/oom.
bctr run -d $IMAGE t-killed sleep 300 >/dev/null
check "ctr tasks kill -s KILL a task within its limit" bctr tasks kill -s KILL t-killed
for _ in $(seq 100); do bctr tasks ls | grep -Eq "t-killed +[0-9]+ +STOPPED" && break; sleep 0.2; done
expect_match "…it exits with 137 as well" "137" "$(bctr tasks rm t-killed 2>&1)"
bctr containers rm t-killed >/dev/null

# An exec'd process killed for memory while the init lives: /tasks/oom before the exec's exit.
bctr run -d --memory-limit $LIMIT $IMAGE t-exec-oom sleep 300 >/dev/null
timeout 120 ctr --address "$BERTH_SOCK" tasks exec --exec-id hog t-exec-oom $HOG >/dev/null 2>&1
expect_eq "an exec'd process over the limit is killed (exit status 137)" 137 "$?"
bctr tasks kill -s KILL t-exec-oom >/dev/null
for _ in $(seq 100); do bctr tasks ls | grep -Eq "t-exec-oom +[0-9]+ +STOPPED" && break; sleep 0.2; done
bctr tasks rm t-exec-oom >/dev/null 2>&1
bctr containers rm t-exec-oom >/dev/null

sleep 0.5
kill "$EVENTS_PID" 2>/dev/null
wait "$EVENTS_PID" 2>/dev/null
events=$(cat "$TEST_TMP/events.out")
# Each container's /tasks/oom and /tasks/exit lines, in the order published.
order () { grep -oE "/tasks/(oom|exit) \{\"container_id\":\"$1\"" "${2:-$TEST_TMP/events.out}" | awk '{print $1}' | tr '\n' ' '; }
expect_match "ctr events saw /tasks/oom of t-oom" '/tasks/oom \{"container_id":"t-oom"\}' "$events"
expect_eq "…once, before its /tasks/exit (runc and crun)" "/tasks/oom /tasks/exit |/tasks/oom /tasks/exit " \
  "$(order t-oom)|$(order t-oom-crun)"
expect_eq "no /tasks/oom for a task killed by a signal within its limit" "/tasks/exit " "$(order t-killed)"
expect_eq "the exec's OOM kill: /tasks/oom before the exec's exit, none again at the init's" \
  "/tasks/oom /tasks/exit /tasks/exit " "$(order t-exec-oom)"

# A task berthd reconnects to after a restart: its memory cgroup is found again. The hog
# waits for a file the test creates once the new berthd is up (no race with the restart).
bctr run -d --memory-limit $LIMIT $IMAGE t-restart sh -c "while [ ! -e /go ]; do sleep 0.1; done; $HOG" >/dev/null
berthd_stop KILL
berthd_start oom || true
bctr events >"$TEST_TMP/events2.out" 2>&1 &
EVENTS_PID=$!
sleep 0.5
bctr tasks exec --exec-id go t-restart touch /go
for _ in $(seq 300); do bctr tasks ls | grep -Eq "t-restart +[0-9]+ +STOPPED" && break; sleep 0.2; done
expect_match "after a restart, a task killed for memory exits with 137" "137" "$(bctr tasks rm t-restart 2>&1)"
bctr containers rm t-restart >/dev/null
sleep 0.5
kill "$EVENTS_PID" 2>/dev/null
wait "$EVENTS_PID" 2>/dev/null
expect_eq "…with /tasks/oom before its /tasks/exit (the touch exec's exit first)" "/tasks/exit /tasks/oom /tasks/exit " \
  "$(order t-restart "$TEST_TMP/events2.out")"
tests_done
