#!/bin/bash
# Plugins load on first use: a fresh berthd maps no runtime, snapshotter or differ; an
# import brings in what unpacking needs (never OpenSSL: SHA-256 is nettle's), a container
# the runtime;
# a berthd restarted while a task runs loads that runtime at start, reconnects to the task
# and still publishes its exit.
source "$(dirname "$0")/lib.sh"
require_plugins local walking overlayfs oci
tap_plan 13

maps_has () { grep -q "/$1" "/proc/$BERTHD_PID/maps"; }
check_loaded () { if maps_has "$2"; then ok "$1"; else not_ok "$1"; diag "$2 is not mapped"; fi; }
check_not_loaded () { if maps_has "$2"; then not_ok "$1"; diag "$2 is mapped"; else ok "$1"; fi; }

make_busybox_image "$TEST_TMP/busybox.tar"
berthd_start lazy || true
bctr version >/dev/null
check_not_loaded "a fresh berthd has not loaded the oci runtime" oci.so
check_not_loaded "…nor the overlayfs snapshotter" overlayfs.so
check_not_loaded "…nor the walking differ" walking.so
expect_match "ctr plugins ls still lists the runtime as ok" "io.containerd.runtime.v2 +task .* ok" "$(bctr plugins ls)"

bctr images import "$TEST_TMP/busybox.tar" >/dev/null
check_loaded "importing an image loads the snapshotter" overlayfs.so
check_loaded "…and the differ" walking.so
check_not_loaded "…but not the runtime" oci.so
check_not_loaded "…and hashing the image maps no libcrypto" libcrypto.so

bctr run -d docker.io/library/busybox:latest lazy-sleeper sleep 600 >/dev/null
check_loaded "running a container loads the runtime" oci.so

berthd_stop
berthd_start lazy || true
check_loaded "a berthd restarted while a task runs loads the runtime at start" oci.so
expect_match "…and reconnects to the task" "lazy-sleeper +[0-9]+ +RUNNING" "$(bctr tasks ls)"
bctr events >"$TEST_TMP/events.out" 2>&1 &
EVENTS_PID=$!
sleep 0.5
bctr tasks kill -s KILL lazy-sleeper
for _ in $(seq 100); do grep -q /tasks/exit "$TEST_TMP/events.out" && break; sleep 0.1; done
kill "$EVENTS_PID" 2>/dev/null; wait "$EVENTS_PID" 2>/dev/null
expect_match "…and publishes its exit" '/tasks/exit \{"container_id":"lazy-sleeper".*"exit_status":137' "$(cat "$TEST_TMP/events.out")"
bctr tasks rm lazy-sleeper >/dev/null
bctr containers rm lazy-sleeper >/dev/null
check "the stopped task and its container are gone" test -z "$(bctr containers ls -q)"
tests_done
