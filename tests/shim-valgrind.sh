#!/bin/bash
# berth-shim under valgrind's memcheck: a dynamically linked, uninstrumented copy
# (tests/valgrind/berth-shim; the installed shim is static, where valgrind cannot see
# malloc) supervises containers through run, exec, pause/resume, kill and delete. Every
# shim process (the detached supervisor and the runtime children it forks) must end with
# no memory error, no invalid read or write and no leaked block.
source "$(dirname "$0")/lib.sh"
require_plugins local walking overlayfs oci
tap_plan 10
"$SRCDIR/tests/install-deps.sh" >/dev/null 2>&1

make_busybox_image "$TEST_TMP/busybox.tar"
berthd_start vg || true
IMAGE=docker.io/library/busybox:latest
bctr images import "$TEST_TMP/busybox.tar" >/dev/null

# The shim berthd starts (from its libexec dir) is valgrind running the dynamic copy.
# A process's log is vg.PID; the runtime binaries the shim execs are not traced.
VG=$TEST_TMP/valgrind
mkdir -p "$VG"
rm -f "$TEST_TMP/vg/libexec/berth-shim"
cat >"$TEST_TMP/vg/libexec/berth-shim" <<WRAP
#!/bin/sh
exec valgrind --tool=memcheck --trace-children=no --leak-check=full --show-leak-kinds=definite,indirect \\
  --errors-for-leak-kinds=definite,indirect --track-origins=yes --log-file=$VG/vg.%p \\
  "$BUILDDIR/tests/valgrind/berth-shim" "\$@"
WRAP
chmod +x "$TEST_TMP/vg/libexec/berth-shim"
RUN="timeout 120 ctr --address $BERTH_SOCK run"
EXEC="timeout 120 ctr --address $BERTH_SOCK tasks exec"

expect_eq "ctr run --rm … echo hello prints hello through the valgrind'ed shim" hello "$($RUN --rm $IMAGE vg-hello echo hello 2>&1)"
check "ctr run -d starts a detached sleeper" bctr run -d $IMAGE vg-sleep sleep 300
expect_eq "ctr tasks exec runs a process in it" hi "$($EXEC --exec-id e1 vg-sleep echo hi 2>&1)"
$EXEC --exec-id e2 vg-sleep sh -c 'exit 5'
expect_eq "…and its exit code propagates" 5 "$?"
bctr tasks pause vg-sleep >/dev/null && bctr tasks resume vg-sleep >/dev/null
expect_match "pause and resume leave it RUNNING" "vg-sleep +[0-9]+ +RUNNING" "$(bctr tasks ls)"
bctr tasks kill -s KILL vg-sleep >/dev/null
for _ in $(seq 100); do bctr tasks rm vg-sleep >/dev/null 2>&1 && break; sleep 0.2; done
bctr containers rm vg-sleep >/dev/null 2>&1
expect_none "killed and deleted, no task is left" '' bctr tasks ls -q

# The shims exit once their task is deleted; valgrind writes each summary at exit.
for _ in $(seq 300); do pgrep -f "berth-shim $BERTH_STATE" >/dev/null || break; sleep 0.1; done
expect_eq "every shim exited" "" "$(pgrep -af "berth-shim $BERTH_STATE")"
summaries=$(grep -l "ERROR SUMMARY:" "$VG"/vg.* 2>/dev/null | wc -l)
check "valgrind ran the shims (two supervisors and their forks: $summaries process summaries)" test "$summaries" -ge 2
expect_eq "no memory error or leak in any shim process" "" \
  "$(grep -L "ERROR SUMMARY: 0 errors" $(grep -l "ERROR SUMMARY:" "$VG"/vg.*) 2>/dev/null)"
expect_eq "no invalid read or write, no uninitialised value used" "" \
  "$(grep -h -E "Invalid (read|write|free)|uninitialised|Conditional jump" "$VG"/vg.* 2>/dev/null | sort -u)"
if [ "$TAP_FAILED" -gt 0 ]; then
  for f in "$VG"/vg.*; do diag "== $f"; sed 's/^/#   /' "$f" | tail -40; done
fi
berthd_stop
tests_done
