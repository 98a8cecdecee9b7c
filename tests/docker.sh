#!/bin/bash
# Docker Engine on berthd: Debian's dockerd 20.10 with --containerd pointed at a private
# berthd (namespace "moby", its own overlay2 graph driver: Tasks.Create with no rootfs
# mounts and an absolute root.path), on private data/exec roots and socket, with no
# iptables and no bridge. docker import, run (output, exit codes), run -d, ps, exec,
# logs, stop, kill, pause/unpause, stats, a restart policy, rm -f, run -it on a terminal,
# 20 containers at once.
source "$(dirname "$0")/lib.sh"
require_plugins local walking overlayfs oci
plain_build_only
tap_plan 28
"$SRCDIR/tests/install-deps.sh" >/dev/null 2>&1 # docker.io, tmux

# ---- berthd, then dockerd on it ----
berthd_start docker || true
D=$TEST_TMP/dockerd
mkdir -p "$D/data" "$D/exec"
echo "{\"deprecated-key-path\": \"$D/key.json\"}" >"$D/daemon.json"
# Only this test's dirs: its own config file (not /etc/docker/daemon.json) and trust key
# (not /etc/docker/key.json). A wrong --containerd would make dockerd start a containerd
# of its own: the first check below sees that in the version it reports.
run_dirs_existed=$([ -d /run/docker ] && echo yes)
dockerd --containerd="$BERTH_SOCK" --config-file "$D/daemon.json" \
  --data-root "$D/data" --exec-root "$D/exec" --pidfile "$D/dockerd.pid" -H "unix://$D/docker.sock" \
  --iptables=false --ip-masq=false --bridge=none --storage-driver overlay2 >"$D/dockerd.log" 2>&1 &
DOCKERD_PID=$!
stop_dockerd () {
  kill -TERM "$DOCKERD_PID" 2>/dev/null
  for _ in $(seq 300); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$DOCKERD_PID" 2>/dev/null
  wait "$DOCKERD_PID" 2>/dev/null
  # Its graph driver's mounts and network namespaces live under its data and exec roots.
  grep -E " ($D)/" /proc/self/mounts | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
  # dockerd makes /run/docker/plugins for plugin sockets whatever its exec-root.
  [ -z "$run_dirs_existed" ] && rmdir /run/docker/plugins /run/docker 2>/dev/null
  return 0
}
trap 'stop_dockerd; tests_cleanup' EXIT
dk () { timeout 120 /usr/bin/docker -H "unix://$D/docker.sock" "$@"; }
for _ in $(seq 600); do dk version >/dev/null 2>&1 && break; kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.1; done
version=$(dk version --format '{{range .Server.Components}}{{.Name}} {{.Version}} {{index .Details "GitCommit"}};{{end}}' 2>&1)
expect_match "dockerd comes up on berthd's socket (the containerd it reports is berth)" "containerd [^;]*berth" "$version"
if ! dk version >/dev/null 2>&1; then
  grep -v "module=grpc" "$D/dockerd.log" | tail -30 | sed 's/^/#   /'
  echo "Bail out! dockerd did not come up"
  exit 1
fi

# ---- an image from a busybox rootfs tar ----
mkdir -p "$TEST_TMP/rootfs/bin" "$TEST_TMP/rootfs/etc" "$TEST_TMP/rootfs/tmp"
cp "$(command -v busybox)" "$TEST_TMP/rootfs/bin/busybox"
for applet in $("$TEST_TMP/rootfs/bin/busybox" --list | grep -vx busybox); do ln -s busybox "$TEST_TMP/rootfs/bin/$applet"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$TEST_TMP/rootfs/etc/passwd"
tar -C "$TEST_TMP/rootfs" -c . >"$TEST_TMP/rootfs.tar"
check "docker import of a busybox rootfs tar" dk import --change 'ENV PATH=/bin' "$TEST_TMP/rootfs.tar" bb:latest
expect_match "docker images lists it" "^bb +latest " "$(dk images)"

# ---- run: output, exit codes ----
expect_eq "docker run --rm bb echo hello prints hello" hello "$(dk run --rm bb echo hello 2>&1)"
dk run --rm bb sh -c 'exit 3' >/dev/null 2>&1
expect_eq "…and the exit code propagates (3)" 3 "$?"
expect_eq "stderr comes through on its own" "to-stderr" "$(dk run --rm bb sh -c 'echo to-stdout; echo to-stderr >&2' 2>&1 >/dev/null)"
expect_eq "docker run -i passes stdin" "piped" "$(echo piped | dk run --rm -i bb cat 2>&1)"

# ---- run -d, ps, exec, logs ----
check "docker run -d starts a detached container" dk run -d --name sleeper bb sh -c 'echo started; exec sleep 300'
expect_match "docker ps shows it Up" "sleeper" "$(dk ps --format '{{.Names}} {{.Status}}' | grep '^sleeper Up')"
expect_match "berthd holds its task in namespace moby" "RUNNING" "$(bctr -n moby tasks ls)"
expect_eq "docker exec runs a process in it" "exec-hi" "$(dk exec sleeper echo exec-hi 2>&1)"
dk exec sleeper sh -c 'exit 5' >/dev/null 2>&1
expect_eq "…and its exit code propagates (5)" 5 "$?"
expect_eq "docker logs shows its output" started "$(dk logs sleeper 2>&1)"

# ---- pause/unpause, stats ----
check "docker pause" dk pause sleeper
expect_eq "…the container is paused" paused "$(dk inspect -f '{{.State.Status}}' sleeper 2>&1)"
check "docker unpause" dk unpause sleeper
expect_eq "…and running again" running "$(dk inspect -f '{{.State.Status}}' sleeper 2>&1)"
expect_match "docker stats --no-stream reports its memory use" "^sleeper [0-9.]+[KMG]i?B " \
  "$(dk stats --no-stream --format '{{.Name}} {{.MemUsage}}' sleeper 2>&1)"

# ---- stop, kill, restart policy, rm -f ----
check "docker stop (sleep ignores TERM: killed after the timeout)" dk stop -t 1 sleeper
expect_eq "…it exited 137" "exited 137" "$(dk inspect -f '{{.State.Status}} {{.State.ExitCode}}' sleeper 2>&1)"
dk run -d --name victim bb sleep 300 >/dev/null
check "docker kill" dk kill victim
expect_eq "…it exited 137" "exited 137" "$(dk inspect -f '{{.State.Status}} {{.State.ExitCode}}' victim 2>&1)"
dk run -d --name flaky --restart on-failure:2 bb sh -c 'exit 1' >/dev/null
for _ in $(seq 300); do
  [ "$(dk inspect -f '{{.RestartCount}} {{.State.Status}}' flaky 2>/dev/null)" = "2 exited" ] && break
  sleep 0.2
done
restart_state=$(dk inspect -f '{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}' flaky 2>&1)
# "0 running 0" was dockerd taking the first exit for an unknown process's: it came before
# Tasks.Start had answered (berthd now holds it until then, as containerd's path does).
expect_eq "--restart on-failure:2 restarts a failing container twice, then leaves it" "2 exited 1" "$restart_state"
dk run -d --name doomed bb sleep 300 >/dev/null
check "docker rm -f of a running container" dk rm -f doomed
expect_eq "…it is gone" "" "$(dk ps -a --format '{{.Names}}' | grep -x doomed)"

# ---- run -it on a terminal ----
screen=$(tty_session 100 30 "/usr/bin/docker -H unix://$D/docker.sock run -it --rm bb sh" 'tty; echo cols=$(stty size); echo done-$((6*7))' "done-42" "exit")
expect_match "docker run -it gives an interactive shell on a terminal sized like the client's" "/dev/pts/[0-9]+.*cols=30 100" \
  "$(printf '%s' "$screen" | tr '\n' ' ')"

# ---- 20 containers at once ----
pids=()
for i in $(seq 20); do dk run --rm bb echo "parallel-$i" >"$TEST_TMP/par.$i" 2>&1 & pids+=($!); done
wait "${pids[@]}"
wait_ok=0
for i in $(seq 20); do grep -qx "parallel-$i" "$TEST_TMP/par.$i" && wait_ok=$((wait_ok + 1)); done
# Seen once in a CI run under load: dockerd's own removal of its container directory for
# --rm failing with "directory not empty" after the container ran and printed. Shown, not
# counted, until its cause is known (a follow-up in the README's Docker section).
grep -h "level=error" "$TEST_TMP"/par.* 2>/dev/null | sed 's/^/# /'
expect_eq "20 docker run --rm at once all print their line" 20 "$wait_ok"
[ "$wait_ok" -eq 20 ] || head -5 "$TEST_TMP"/par.* | sed 's/^/#   /'

# ---- cleanup ----
dk rm -f sleeper victim flaky >/dev/null 2>&1
expect_eq "after docker rm, berthd holds no container in namespace moby" "" "$(bctr -n moby containers ls -q)"
tests_done
