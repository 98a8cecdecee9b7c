#!/bin/bash
# Stress (not part of `make check`; run with `make check-stress`): STRESS_CLIENTS parallel
# clients (default 4) loop for STRESS_SECONDS (default 60) creating, running, exec'ing
# into, killing and deleting containers, importing and deleting images, creating and
# deleting leases, while GC runs every few seconds, after a warm-up of the same load
# (STRESS_WARMUP seconds, default 15); container ids repeat between warm-up and run, and
# every client's `ctr tasks ls` races with the others' deletes. Afterwards:
#   - no operation of any client failed (each failure is shown with its output);
#   - no mount, shim, cgroup or task of the clients is left;
#   - berthd's open fds are back to their post-warm-up count;
#   - berthd's RSS is within 10% of its post-warm-up RSS.
source "$(dirname "$0")/lib.sh"
SECONDS_TOTAL=${STRESS_SECONDS:-60}
CLIENTS=${STRESS_CLIENTS:-4}
tap_plan 8
"$SRCDIR/tests/install-deps.sh" >/dev/null 2>&1

IMAGE=docker.io/library/busybox:latest
make_busybox_image "$TEST_TMP/busybox.tar"
for c in $(seq "$CLIENTS"); do make_busybox_image "$TEST_TMP/img$c.tar" "docker.io/library/stress$c:latest"; done
BERTH="$BUILDDIR/core/cli/berth"
berthd_start stress -- --log-level info || true
bctr images import "$TEST_TMP/busybox.tar" >/dev/null
RUN="timeout 60 ctr --address $BERTH_SOCK run"

rss () { awk '/^VmRSS:/ {print $2}' "/proc/$BERTHD_PID/status"; }
fds () { ls "/proc/$BERTHD_PID/fd" | wc -l; }

# One client's loop. A failed operation is counted and its output kept in
# $TEST_TMP/errors.N (shown at the end); a container whose run failed is still removed,
# so that what is left afterwards is berthd's doing, not a client that gave up.
client () {
  local c=$1 end=$2 n=0 errors=0
  fail () { errors=$((errors + 1)); printf '%s %s: %s\n' "$(date +%T)" "$1" "$(tr '\n' ' ' <"$TEST_TMP/out.$c")" >>"$TEST_TMP/errors.$c"; }
  while [ "$(date +%s)" -lt "$end" ]; do
    n=$((n + 1))
    local id="s$c-$n"
    $RUN --rm $IMAGE "$id-run" true >"$TEST_TMP/out.$c" 2>&1 || fail "run --rm $id-run"
    if $RUN -d $IMAGE "$id" sleep 60 >"$TEST_TMP/out.$c" 2>&1; then
      timeout 30 ctr --address "$BERTH_SOCK" tasks exec --exec-id e1 "$id" true >"$TEST_TMP/out.$c" 2>&1 \
        || fail "exec $id"
    else
      fail "run -d $id"
    fi
    remove "$id" || fail "containers rm $id"
    bctr images import "$TEST_TMP/img$c.tar" >"$TEST_TMP/out.$c" 2>&1 || fail "images import img$c"
    bctr images rm "docker.io/library/stress$c:latest" >"$TEST_TMP/out.$c" 2>&1 || fail "images rm stress$c"
    { bctr leases create --id "lease-$id" && bctr leases rm "lease-$id"; } >"$TEST_TMP/out.$c" 2>&1 \
      || fail "leases create/rm lease-$id"
  done
  echo "$n $errors" >"$TEST_TMP/client.$c"
}

# remove ID: kills the container's task if it has one, deletes it once stopped (up to
# 30 s: a loaded machine is slow to reap), then the container.
remove () {
  local id=$1
  bctr tasks kill -s KILL "$id" >/dev/null 2>&1
  for _ in $(seq 300); do
    bctr tasks ls -q 2>/dev/null | grep -qx "$id" || break
    bctr tasks rm "$id" >/dev/null 2>&1 && break
    sleep 0.1
  done
  bctr containers ls -q 2>/dev/null | grep -qx "$id" || return 0
  bctr containers rm "$id" >"$TEST_TMP/out.$c" 2>&1
}

# Warm-up: all clients for STRESS_WARMUP seconds (default 15), so that the daemon's
# thread pool and allocator arenas reach the size this concurrency needs; then the baseline.
warm_end=$(( $(date +%s) + ${STRESS_WARMUP:-15} ))
pids=()
for c in $(seq "$CLIENTS"); do client "$c" "$warm_end" & pids+=($!); done
wait "${pids[@]}"
"$BERTH" --address "$BERTH_SOCK" gc >/dev/null 2>&1
sleep 1
rm -f "$TEST_TMP"/errors.*
RSS0=$(rss)
FDS0=$(fds)
diag "after warm-up: RSS $RSS0 KiB, $FDS0 fds"

end=$(( $(date +%s) + SECONDS_TOTAL ))
pids=()
for c in $(seq "$CLIENTS"); do client "$c" "$end" & pids+=($!); done
( while [ "$(date +%s)" -lt "$end" ]; do "$BERTH" --address "$BERTH_SOCK" gc >/dev/null 2>&1; sleep 3; done ) &
gc_pid=$!
( while [ "$(date +%s)" -lt "$end" ]; do echo "$(rss)/$(ls /proc/$BERTHD_PID/task | wc -l)"; sleep 10; done ) >"$TEST_TMP/rss" &
rss_pid=$!
wait "${pids[@]}" "$gc_pid" "$rss_pid"
diag "RSS KiB/threads every 10 s: $(tr '\n' ' ' <"$TEST_TMP/rss")"

rounds=0 errors=0
for c in $(seq "$CLIENTS"); do read -r r e <"$TEST_TMP/client.$c"; rounds=$((rounds + r)); errors=$((errors + e)); done
expect_eq "$CLIENTS clients × ${SECONDS_TOTAL}s: $rounds rounds, no failed operation" 0 "$errors"
[ "$errors" -gt 0 ] && { diag "failed operations (first 20):"; sort "$TEST_TMP"/errors.* | head -20 | sed 's/^/  /'; }
"$BERTH" --address "$BERTH_SOCK" gc >/dev/null 2>&1
sleep 2
expect_none "no container is left" "grep '^s'" bctr containers ls -q
expect_none "no task is left" "grep '^s'" bctr tasks ls -q
expect_eq "no rootfs mount is left under the state dir" "" "$(grep " $BERTH_STATE" /proc/self/mounts)"
expect_eq "no shim of the clients is left" "" "$(pgrep -af "berth-shim $BERTH_STATE" | grep -v ' $')"
expect_eq "no cgroup of the clients' containers is left" "" \
  "$(ls -d /sys/fs/cgroup/memory/default/s[0-9]*-[0-9]* /sys/fs/cgroup/pids/default/s[0-9]*-[0-9]* 2>/dev/null)"
fds_now=$(fds)
expect_eq "berthd's open fds are back to their post-warm-up count ($FDS0)" "$FDS0" "$fds_now"
[ "$TAP_FAILED" -gt 0 ] && { diag "berthd's warnings (last 20):"; grep -E 'WARNING|CRITICAL|ERROR' "$BERTHD_LOG" | tail -20 | sed 's/^/  /'; }
rss_now=$(rss)
diag "RSS after: $rss_now KiB (warm-up $RSS0 KiB)"
check "berthd's RSS is within 10% of post-warm-up ($RSS0 → $rss_now KiB)" test "$rss_now" -le $(( RSS0 * 110 / 100 ))
berthd_stop
tests_done
