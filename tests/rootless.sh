#!/bin/bash
# Rootless berthd: two users this test creates (with their own /etc/subuid and /etc/subgid
# ranges) each run their own daemon through data/berthd-rootless (rootlesskit), import a
# local image and run containers with ctr and berth. A container's root is the user's
# uid on the host; the daemons cannot see each other; nothing is written outside the
# users' home and runtime dirs; a stopped daemon leaves no mount and no process.
# The test runs as root (as CI does) and turns into the users with runuser.
source "$(dirname "$0")/lib.sh"
require_plugins local walking overlayfs oci
for prog in rootlesskit newuidmap newgidmap useradd userdel runuser; do
  command -v "$prog" >/dev/null || { echo "1..0 # SKIP $prog is missing (tests/install-deps.sh installs it)"; exit 0; }
done
[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP creates users: run as root"; exit 0; }
tap_plan 27
"$SRCDIR/tests/install-deps.sh" >/dev/null 2>&1 # binds hugetlb to v1 where crun needs it

IMAGE=docker.io/library/busybox:latest
make_busybox_image "$TEST_TMP/busybox.tar"
# The users reach what is theirs below TEST_TMP (mktemp's 0700), and the image.
chmod 0711 "$TEST_TMP"
chmod 0644 "$TEST_TMP/busybox.tar"

# The build tree as the users see it: a checkout under /root (0700) is out of their reach,
# so it is bind-mounted below TEST_TMP (lib.sh's cleanup unmounts it). Real binaries from
# .libs/ with LD_LIBRARY_PATH, not libtool's wrapper scripts, which may relink into the
# build tree (not the users' to write).
B=$BUILDDIR
if ! runuser -u nobody -- test -x "$BUILDDIR/core"; then
  mkdir -p "$TEST_TMP/build"
  mount --bind "$BUILDDIR" "$TEST_TMP/build"
  B=$TEST_TMP/build
fi
real () { if [ -x "$B/$(dirname "$1")/.libs/$(basename "$1")" ]; then echo "$B/$(dirname "$1")/.libs/$(basename "$1")"; else echo "$B/$1"; fi; }
LIBPATH=$B/core/.libs
PLUGIN_ARGS=()
for dir in "$B"/plugins/*/*/.libs; do
  [ -d "$dir" ] && PLUGIN_ARGS+=(--plugin-dir "$dir")
done

# users: NAME → uid, home, runtime dir
USERS=()
declare -A UID_OF HOME_OF RUN_OF LAUNCHER_PID
user_add () {
  local name=$1 home=$TEST_TMP/$1
  useradd --no-create-home --home-dir "$home" --shell /bin/sh --user-group "$name" || return 1
  USERS+=("$name")
  # useradd gives a new user subordinate ranges (SUB_UID_COUNT); add some when it did not.
  if ! grep -q "^$name:" /etc/subuid || ! grep -q "^$name:" /etc/subgid; then
    local base=$((1000000 + ($(id -u "$name") % 1000) * 65536))
    usermod --add-subuids "$base-$((base + 65535))" --add-subgids "$base-$((base + 65535))" "$name" || return 1
  fi
  UID_OF[$name]=$(id -u "$name")
  HOME_OF[$name]=$home
  RUN_OF[$name]=$TEST_TMP/$name-run
  install -d -m 0700 -o "$name" -g "$name" "$home" "${RUN_OF[$name]}" "$home/share"
}
# as NAME COMMAND…: runs COMMAND as user NAME in a login-like environment of its own.
as () {
  local name=$1; shift
  runuser -u "$name" -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="${HOME_OF[$name]}" USER="$name" \
    XDG_RUNTIME_DIR="${RUN_OF[$name]}" LD_LIBRARY_PATH="$LIBPATH" \
    ${ASAN_OPTIONS:+ASAN_OPTIONS="${ASAN_OPTIONS%%:log_path=*}:log_path=${HOME_OF[$name]}/sanitizer"} \
    ${UBSAN_OPTIONS:+UBSAN_OPTIONS="${UBSAN_OPTIONS%%:log_path=*}:log_path=${HOME_OF[$name]}/sanitizer"} \
    BERTH_DATADIR="$SRCDIR/data" BERTH_LOG_DIR="${HOME_OF[$name]}/logs" "$@"
}
sock_of () { echo "${RUN_OF[$1]}/berth/berthd.sock"; }
# ctr mounts snapshots itself (ctr run reads the image's /etc/group): in the daemon's
# namespaces, through the launcher.
uctr () { local name=$1; shift; as "$name" timeout 120 "$B/data/berthd-rootless" nsenter ctr --address "$(sock_of "$name")" "$@"; }

# daemon_start NAME: the user's berthd through the launcher; waits for its socket.
daemon_start () {
  local name=$1 libexec=${HOME_OF[$1]}/libexec prog
  as "$name" mkdir -p "$libexec"
  for prog in core/berth-plugin-scanner core/shim/berth-shim core/cri/berth-pause; do
    [ -e "$B/$prog" ] && as "$name" ln -sf "$(real "$prog")" "$libexec/$(basename "$prog")"
  done
  # Its log goes where lib.sh's cleanup looks for sanitizer reports.
  mkdir -p "$TEST_TMP/log-$name"
  as "$name" env BERTHD="$(real core/berthd)" "$B/data/berthd-rootless" --log-level debug \
    --libexec-dir "$libexec" "${PLUGIN_ARGS[@]}" >>"$TEST_TMP/log-$name/berthd.log" 2>&1 &
  LAUNCHER_PID[$name]=$!
  local i
  for i in $(seq 600); do
    [ -S "$(sock_of "$name")" ] && return 0
    kill -0 "${LAUNCHER_PID[$name]}" 2>/dev/null || break
    sleep 0.1
  done
  diag "$name's berthd did not come up; its log:"
  sed 's/^/#   /' "$TEST_TMP/log-$name/berthd.log" | tail -30
  return 1
}
# daemon_stop NAME: SIGTERM to the user's berthd (rootlesskit's child_pid); rootlesskit,
# and the runuser around it, end with it.
daemon_stop () {
  local pid=${LAUNCHER_PID[$1]:-} daemon i
  [ -n "$pid" ] || return 0
  daemon=$(cat "${RUN_OF[$1]}/berth-rootlesskit/child_pid" 2>/dev/null)
  [ -n "$daemon" ] && kill -TERM "$daemon" 2>/dev/null
  for i in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && diag "$1's launcher (pid $pid) outlived its berthd (pid $daemon)"
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  unset "LAUNCHER_PID[$1]"
}

users_cleanup () {
  local name pid
  for name in "${USERS[@]}"; do
    daemon_stop "$name"
    # What the user still runs (shims, containers, a stuck rootlesskit): by pid.
    for pid in $(pgrep -u "${UID_OF[$name]}" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
    # Sanitizer reports are moved where lib.sh's cleanup reads them.
    for f in "${HOME_OF[$name]}"/sanitizer.*; do [ -e "$f" ] && mv "$f" "$TEST_TMP/sanitizer.$name.${f##*.}"; done
    userdel "$name" 2>/dev/null
  done
  tests_cleanup
}
trap users_cleanup EXIT

MARK=$TEST_TMP/mark
touch "$MARK"
sleep 1 # so that files written from now on are -newer than the mark
A=brl$$a
Bu=brl$$b
user_add "$A" && user_add "$Bu"
expect_match "useradd gave $A a subordinate uid range" "^$A:[0-9]+:[0-9]+" "$(grep "^$A:" /etc/subuid)"

# ---- user A: daemon, image, containers ----
diag "at ${SECONDS}s"
daemon_start "$A"
expect_eq "$A's berthd serves on \$XDG_RUNTIME_DIR/berth/berthd.sock" yes "$([ -S "$(sock_of "$A")" ] && echo yes)"
expect_eq "…a socket the user owns" "${UID_OF[$A]}" "$(stat -c %u "$(sock_of "$A")" 2>/dev/null)"
bpid=$(pgrep -u "${UID_OF[$A]}" -x berthd | head -1)
expect_match "berthd runs in a user namespace with the user's uid as root" "^ *0 +${UID_OF[$A]} +1$" \
  "$(head -1 "/proc/$bpid/uid_map" 2>/dev/null)"
expect_match "…and the config says rootless with XDG paths" "root=${HOME_OF[$A]}/.local/share/berth" \
  "$(as "$A" "$(real core/berthd)" --rootless --print-config 2>&1)"

check "$A imports the image (ctr images import)" uctr "$A" images import "${TEST_TMP}/busybox.tar"
expect_match "…unpacked into the overlayfs snapshotter" "sha256:" "$(uctr "$A" snapshots --snapshotter overlayfs ls 2>&1)"
parent=$(uctr "$A" snapshots ls 2>/dev/null | awk 'NR == 2 {print $1}')
expect_match "the overlayfs snapshotter mounts with userxattr in the user namespace" "userxattr" \
  "$(uctr "$A" snapshots prepare --mounts probe-key "$parent" 2>&1)"
uctr "$A" snapshots rm probe-key >/dev/null 2>&1

expect_eq "ctr run --rm … echo hello prints hello (runc)" hello "$(uctr "$A" run --rm "$IMAGE" t-hello echo hello 2>&1)"
uctr "$A" run --rm "$IMAGE" t-exit sh -c 'exit 7' >/dev/null 2>&1
expect_eq "…its exit code propagates (7)" 7 "$?"
expect_eq "ctr run --runc-binary crun prints hello" hello \
  "$(uctr "$A" run --rm --runc-binary crun "$IMAGE" t-crun echo hello 2>&1)"
expect_eq "id -u in the container is 0" 0 "$(uctr "$A" run --rm "$IMAGE" t-id id -u 2>&1)"
uctr "$A" run --rm --mount "type=bind,src=${HOME_OF[$A]}/share,dst=/share,options=rbind:rw" "$IMAGE" t-touch \
  touch /share/made-by-root >/dev/null 2>&1
expect_eq "a file the container's root creates in a bind mount is the user's on the host" "${UID_OF[$A]}" \
  "$(stat -c %u "${HOME_OF[$A]}/share/made-by-root" 2>&1)"

check "ctr run -d starts a detached sleeper" uctr "$A" run -d "$IMAGE" t-sleep sleep 300
cpid=$(uctr "$A" tasks ls 2>/dev/null | awk '$1 == "t-sleep" {print $2}')
expect_match "its root (uid 0 inside) is the user's uid on the host (/proc/PID/uid_map)" "^ *0 +${UID_OF[$A]} +1$" \
  "$(head -1 "/proc/$cpid/uid_map" 2>/dev/null)"
expect_eq "…and the host sees the process as the user's" "${UID_OF[$A]}" "$(stat -c %u "/proc/$cpid" 2>/dev/null)"
expect_eq "berth run --rm busybox echo hi prints hi" hi \
  "$(as "$A" timeout 120 "$(real core/cli/berth)" --address "$(sock_of "$A")" run --rm busybox echo hi 2>&1)"
expect_none "the containers' mounts are not in the host's mount table" "grep -F ${HOME_OF[$A]}" cat /proc/self/mountinfo

# CRI: what needs real root is refused, saying why.
diag "at ${SECONDS}s"
mkdir -p "$TEST_TMP/stubs"
/usr/bin/python3 -m grpc_tools.protoc -I"$SRCDIR/core/services/cri" --python_out="$TEST_TMP/stubs" --grpc_python_out="$TEST_TMP/stubs" \
  "$SRCDIR/core/services/cri/api.proto" && cp "$SRCDIR/tests/cri-client.py" "$TEST_TMP/stubs/"
chmod -R a+rX "$TEST_TMP/stubs"
pod='{"config": {"metadata": {"name": "p", "uid": "u1", "namespace": "n"}, "linux": {"securityContext": {"privileged": true, "namespaceOptions": {"network": 2}}}}}'
expect_match "CRI RunPodSandbox of a privileged pod is refused: needs real root" "error: .*privileged needs real root.*rootless" \
  "$(as "$A" timeout 120 /usr/bin/python3 "$TEST_TMP/stubs/cri-client.py" "$TEST_TMP/stubs" "$(sock_of "$A")" RuntimeService RunPodSandbox "$pod" 2>&1)"

# ---- user B beside A ----
diag "at ${SECONDS}s"
daemon_start "$Bu"
expect_none "$Bu's daemon runs beside and sees no image of $A's" '' uctr "$Bu" images ls -q
expect_none "…and no container of $A's" '' uctr "$Bu" containers ls -q
out=$(as "$Bu" timeout 60 ctr --address "$(sock_of "$A")" containers ls -q 2>&1) && not_ok "$Bu cannot reach $A's socket" \
  || expect_match "$Bu cannot reach $A's socket" "permission denied" "$out"
expect_eq "$Bu cannot read $A's data" denied \
  "$(as "$Bu" ls "${HOME_OF[$A]}/.local/share/berth" >/dev/null 2>&1 && echo readable || echo denied)"
expect_eq "ctr run as $Bu prints hello after importing its own copy" hello \
  "$(uctr "$Bu" images import "$TEST_TMP/busybox.tar" >/dev/null 2>&1; uctr "$Bu" run --rm "$IMAGE" t-hello echo hello 2>&1)"

# ---- stopping ----
diag "at ${SECONDS}s"
uctr "$A" tasks rm -f t-sleep >/dev/null 2>&1
daemon_stop "$A"
daemon_stop "$Bu"
# An exited shim may stay a zombie for a moment, until the namespace's reaper goes.
for _ in $(seq 100); do pgrep -u "${UID_OF[$A]},${UID_OF[$Bu]}" >/dev/null || break; sleep 0.1; done
expect_eq "stopping the daemons leaves none of the users' processes" "" \
  "$(pgrep -u "${UID_OF[$A]},${UID_OF[$Bu]}" -a 2>/dev/null)"
expect_none "…and no mount under their dirs" "grep -E '$TEST_TMP/($A|$Bu)'" cat /proc/self/mountinfo
# Files the users or their containers (subordinate uids) wrote since the start anywhere
# but their own dirs. An unprivileged user writes only to its own dirs and world-writable
# ones: those are searched.
owners=()
for name in "$A" "$Bu"; do
  owners+=(-o -uid "${UID_OF[$name]}")
  while IFS=: read -r _ start count; do
    owners+=(-o \( -uid +$((start - 1)) -uid -$((start + count)) \))
  done < <(grep "^$name:" /etc/subuid)
done
prune=()
for name in "$A" "$Bu"; do prune+=(-o -path "${HOME_OF[$name]}" -o -path "${RUN_OF[$name]}"); done
outside=$(find /tmp /var/tmp /dev/shm /run /var/lock /dev/mqueue -xdev \( -false "${prune[@]}" \) -prune -o \
            -newer "$MARK" \( -false "${owners[@]}" \) -print 2>/dev/null | sort -u | head -20)
expect_eq "nothing was written outside the users' home and runtime dirs" "" "$outside"
tests_done
