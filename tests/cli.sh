#!/bin/bash
# The berth CLI against a real berthd with real runc and crun: image import/export,
# run with its flags observable inside the container, detached containers with logs,
# exec, stop and rm, seccomp enforcement, terminals, exit codes and error messages.
source "$(dirname "$0")/lib.sh"
require_plugins local walking overlayfs oci
tap_plan 63
"$SRCDIR/tests/install-deps.sh" >/dev/null 2>&1 # binds hugetlb to v1 where crun needs it

export BERTH_DATADIR=$SRCDIR/data BERTH_LOG_DIR=$TEST_TMP/logs
make_busybox_image "$TEST_TMP/busybox.tar"
berthd_start cli || true
BERTH="$BUILDDIR/core/cli/berth --address $BERTH_SOCK"
b () { timeout 60 $BERTH "$@"; }

# ---- images ----
out=$(b image import "$TEST_TMP/busybox.tar" 2>"$TEST_TMP/import.err")
expect_eq "berth image import prints the image it created" docker.io/library/busybox:latest "$out"
expect_match "…reporting each stored blob (plain lines: not a TTY)" "stored sha256:[0-9a-f]{64}" "$(cat "$TEST_TMP/import.err")"
expect_match "…and unpacks it (the layer's snapshot is committed)" "committed" "$(b snapshot ls)"
expect_match "berth image ls lists it with its size" "^docker.io/library/busybox:latest +[0-9a-f]{19} +[0-9.]+ MB" "$(b image ls)"
expect_match "berth image ls --json" '"name" : "docker.io/library/busybox:latest"' "$(b image ls --json)"
expect_match "berth image inspect shows the config and chain ids" '"chainIDs".*"config"' "$(b image inspect busybox | tr -d '\n')"
b image import -q "$TEST_TMP/busybox.tar" >/dev/null 2>"$TEST_TMP/quiet.err"
expect_eq "image import -q prints no progress" "" "$(cat "$TEST_TMP/quiet.err")"
check "berth image export writes an archive" b image export "$TEST_TMP/export.tar" busybox
check "…that ctr imports (under another namespace)" bctr -n other images import "$TEST_TMP/export.tar"
expect_eq "…with the same image" docker.io/library/busybox:latest "$(bctr -n other images ls -q)"
printf 'not a tar' >"$TEST_TMP/junk.tar"
out=$(b image import "$TEST_TMP/junk.tar" 2>&1); rc=$?
expect_match "importing junk fails with a berth: message" "^berth: image import .*junk.tar: " "$out"
expect_eq "…and exit code 125" 125 "$rc"

# ---- run ----
expect_eq "berth run --rm busybox echo hi prints hi" hi "$(b run --rm busybox echo hi 2>&1)"
b run --rm busybox sh -c 'exit 7'
expect_eq "the container's exit code is berth's (7)" 7 "$?"
expect_eq "-e sets the environment" "bar" "$(b run --rm -e FOO=bar busybox sh -c 'echo $FOO')"
mkdir -p "$TEST_TMP/vol" && echo from-host >"$TEST_TMP/vol/file"
expect_eq "-v bind-mounts a host directory" from-host "$(b run --rm -v "$TEST_TMP/vol:/data" busybox cat /data/file)"
b run --rm -v "$TEST_TMP/vol:/data:ro" busybox sh -c 'echo x >/data/new' 2>/dev/null
expect_eq "…and :ro makes it read-only" "1:no" "$?:$([ -e "$TEST_TMP/vol/new" ] && echo yes || echo no)"
expect_eq "--workdir sets the working directory" /tmp "$(b run --rm --workdir /tmp busybox pwd)"
expect_eq "--user nobody runs as uid 65534 (looked up in the image's /etc/passwd)" "65534" "$(b run --rm --user nobody busybox id -u)"
expect_eq "--memory 32m is the container's memory cgroup limit" 33554432 \
  "$(b run --rm --memory 32m busybox sh -c 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max')"
expect_eq "--hostname" boaty "$(b run --rm --hostname boaty busybox hostname)"
expect_eq "stdin reaches the container with -i" piped "$(echo piped | b run --rm -i busybox cat)"
b run --rm --read-only busybox touch /x 2>/dev/null
expect_eq "--read-only: the root filesystem refuses writes" 1 "$?"
expect_none "--rm left no container behind" '' b ps -a -q

# ---- seccomp: the default profile is enforced ----
out=$(b run --rm busybox unshare -m true 2>&1); rc=$?
expect_match "the default seccomp profile blocks unshare (EPERM)" "Operation not permitted" "$out"
expect_eq "…and the command fails" 1 "$rc"
check "--security-opt seccomp=unconfined allows it (with the capability it needs)" b run --rm --cap-add SYS_ADMIN --security-opt seccomp=unconfined busybox unshare -m true
check "--privileged allows it" b run --rm --privileged busybox unshare -m true
echo '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","no_such_call"],"action":"SCMP_ACT_ERRNO"}]}' >"$TEST_TMP/profile.json"
out=$(b seccomp check "$TEST_TMP/profile.json"); rc=$?
expect_match "berth seccomp check names the unknown syscall" "no_such_call" "$out"
expect_eq "…and exits 1" 1 "$rc"
out=$(b run --rm --security-opt seccomp="$TEST_TMP/profile.json" busybox mkdir /tmp/d 2>&1)
expect_match "a user profile is enforced (mkdir denied), its unknown name dropped" "Operation not permitted|Permission denied" "$out"

# ---- detached: logs, exec, stop, rm ----
expect_eq "berth run -d prints the id" web "$(b run -d --name web busybox sh -c 'echo started; trap "echo bye; exit 0" TERM; while true; do sleep 0.1; done')"
sleep 0.5
expect_match "berth ps lists it running" "^web +docker.io/library/busybox:latest +sh -c.* running +[0-9]+" "$(b ps)"
expect_eq "berth logs shows its output" started "$(b logs web)"
expect_eq "berth exec runs in it" "hi-from-exec" "$(b exec web echo hi-from-exec)"
b exec web sh -c 'exit 4'
expect_eq "…with the exit code of the exec'd process" 4 "$?"
out=$(b rm web 2>&1); rc=$?
expect_match "berth rm of a running container refuses, naming the fix" "is running: stop it first" "$out"
expect_eq "…exit 125" 125 "$rc"
check "berth stop stops it" b stop -t 5 web
expect_match "…its TERM trap ran (logs)" "bye" "$(b logs web)"
expect_match "berth ps -a shows it stopped" "^web .* stopped" "$(b ps -a)"
check "berth rm removes it" b rm web
expect_none "…and its snapshot" "grep -w web" b snapshot ls
b run -d --name sleeper busybox sleep 100 >/dev/null
check "berth rm -f removes a running container" b rm -f sleeper
expect_none "…nothing is left" '' b ps -a -q

# ---- crun ----
expect_eq "--runtime crun runs the same" hi-crun "$(b run --rm --runtime crun busybox echo hi-crun 2>&1)"
b run --rm --runtime crun busybox sh -c 'exit 5'
expect_eq "…exit codes propagate" 5 "$?"
expect_eq "…--user nobody" 65534 "$(b run --rm --runtime crun --user nobody busybox id -u)"
expect_match "…seccomp enforced by crun" "Operation not permitted" "$(b run --rm --runtime crun busybox unshare -m true 2>&1)"
b run -d --runtime crun --name cweb busybox sleep 100 >/dev/null
expect_eq "…exec under crun" yes "$(b exec cweb echo yes)"
check "…rm -f under crun" b rm -f cweb

# ---- terminal ----
screen=$(tty_session 90 25 "$BERTH run -it --rm busybox sh" 'echo $((6*7)); stty size' "^[0-9]+ [0-9]+$" exit)
expect_match "berth run -it gives an interactive shell" "^42$" "$screen"
expect_match "…on a terminal sized like the client's" "^25 90$" "$screen"
b run -d --name tty-host busybox sleep 100 >/dev/null
screen=$(tty_session 70 22 "$BERTH exec -it tty-host sh; echo rc=\$?; sleep 5" 'echo $((6*8)); stty size; exit 3' "^rc=")
expect_match "berth exec -it gives a shell on its own terminal" "^48$" "$screen"
expect_match "…sized like the client's" "^22 70$" "$screen"
expect_match "…and its exit code is berth's" "^rc=3$" "$screen"
b rm -f tty-host >/dev/null

# ---- errors ----
out=$(b run nosuchimage true 2>&1); rc=$?
expect_match "an unknown image suggests berth image ls" "^berth: run: no image nosuchimage .*berth image ls" "$out"
expect_eq "…exit 1" 1 "$rc"
out=$($BUILDDIR/core/cli/berth --address "$TEST_TMP/none.sock" ps 2>&1); rc=$?
expect_match "an unreachable daemon: one line naming the socket and how to start berthd" "^berth: cannot reach berthd at $TEST_TMP/none.sock: .*systemctl start berthd" "$out"
expect_eq "…exit 125" "125:1" "$rc:$(printf '%s\n' "$out" | wc -l)"

# ---- the daemon's default snapshotter, not a hard-coded one ----
printf '[berthd]\ndefault-snapshotter=native\n' >"$TEST_TMP/native.conf"
berthd_start native -- --config "$TEST_TMP/native.conf" || true
NB="$BUILDDIR/core/cli/berth --address $BERTH_SOCK"
timeout 60 $NB image import -q "$TEST_TMP/busybox.tar" >/dev/null
expect_eq "a daemon whose default snapshotter is native: berth run works" hi \
  "$(timeout 60 $NB run --name on-native busybox echo hi 2>&1)"
expect_match "…its container's snapshot is the native snapshotter's (the daemon's default)" '"Snapshotter": "native"' \
  "$(bctr containers info on-native)"
expect_match "…where berth image import unpacked the image" "committed" "$(timeout 60 $NB snapshot ls)"

tests_done
