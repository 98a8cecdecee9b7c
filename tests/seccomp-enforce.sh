#!/bin/bash
# The specs libberth-spec generates, enforced by real runc and crun: a busybox-static
# bundle whose config.json comes from tests/spec-gen-tool. With the default seccomp
# profile ordinary commands run and `unshare` fails with EPERM; the same unshare of a
# user namespace works with seccomp unconfined and the same capabilities (so the profile,
# not a missing capability, stops it); CAP_SYS_ADMIN opens unshare through the profile's
# capability-gated rule; a privileged container (no seccomp) unshares freely.
source "$(dirname "$0")/lib.sh"
tap_plan 15
"$SRCDIR/tests/install-deps.sh" >/dev/null 2>&1 # binds hugetlb to v1 where crun needs it

export BERTH_DATADIR=$SRCDIR/data # the profile from the source tree
GEN=$BUILDDIR/tests/spec-gen-tool
BUNDLE=$TEST_TMP/bundle
# cgroupsPath is /<namespace>/<id>: a namespace of our own, removed at the end
NS=berth-seccomp-$$
CREATED=$TEST_TMP/containers

cleanup () {
  local rc=$? entry
  if [ -f "$CREATED" ]; then
    while read -r entry; do
      "${entry%%:*}" delete -f "${entry#*:}" >/dev/null 2>&1
    done <"$CREATED"
  fi
  rmdir /sys/fs/cgroup/*/"$NS" /sys/fs/cgroup/unified/"$NS" 2>/dev/null
  (exit $rc)
  tests_cleanup
}
trap cleanup EXIT

mkdir -p "$BUNDLE"/rootfs/{bin,sbin,usr/bin,usr/sbin,etc,tmp}
cp /bin/busybox "$BUNDLE/rootfs/bin/busybox"
chroot "$BUNDLE/rootfs" /bin/busybox --install -s
echo '{"config": {"Cmd": ["sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]}}' >"$TEST_TMP/image-config.json"

# run RUNTIME NAME [SPEC-GEN-TOOL OPTION…] -- COMMAND…: generates config.json, runs the
# container to completion and deletes it; prints its output, returns its exit status.
run () {
  local runtime=$1 id="$2-$1-$$"
  shift 2
  "$GEN" --image-config "$TEST_TMP/image-config.json" --namespace "$NS" --id "$id" "$@" >"$BUNDLE/config.json" \
    || return 125
  echo "$runtime:$id" >>"$CREATED"
  (cd "$BUNDLE" && timeout 60 "$runtime" run "$id" </dev/null 2>&1)
  local rc=$?
  "$runtime" delete -f "$id" >/dev/null 2>&1
  return $rc
}

# expect_eperm DESCRIPTION OUTPUT EXIT-STATUS
expect_eperm () {
  if [ "$3" -ne 0 ] && printf '%s' "$2" | grep -q "Operation not permitted"; then ok "$1"
  else not_ok "$1"; diag "exit status $3, output:"; printf '%s\n' "$2" | sed 's/^/#   /' | head -20; fi
}

# expect_success DESCRIPTION OUTPUT EXIT-STATUS
expect_success () {
  if [ "$3" -eq 0 ]; then ok "$1"
  else not_ok "$1"; diag "exit status $3, output:"; printf '%s\n' "$2" | sed 's/^/#   /' | head -20; fi
}

"$GEN" --image-config "$TEST_TMP/image-config.json" -- true >"$TEST_TMP/default.json"
expect_match "spec-gen-tool's spec carries the default profile (defaultAction SCMP_ACT_ERRNO)" \
  '"defaultAction" : "SCMP_ACT_ERRNO"' "$(cat "$TEST_TMP/default.json")"

for runtime in runc crun; do
  why_skip=""
  if ! command -v "$runtime" >/dev/null; then
    why_skip="$runtime is not installed"
  elif [ "$runtime" = crun ]; then
    out=$(run crun probe -- true)
    if printf '%s' "$out" | grep -q "hybrid mode not supported"; then
      why_skip="crun refuses this cgroup v1-hybrid host (bind hugetlb to v1, see HOST-NOTES)"
    fi
  fi
  if [ -n "$why_skip" ]; then
    for _ in $(seq 7); do skip "$runtime: $why_skip"; done
    continue
  fi

  expect_eq "$runtime, default profile: echo hi prints hi" hi "$(run $runtime echo -- echo hi)"
  expect_match "$runtime, default profile: the process runs under a seccomp filter (Seccomp: 2)" \
    'Seccomp:[[:space:]]+2' "$(run $runtime status -- grep Seccomp: /proc/self/status)"

  out=$(run $runtime unshare-m -- unshare -m true); rc=$?
  expect_eperm "$runtime, default profile: unshare -m true fails with EPERM" "$out" $rc

  # A user namespace needs no capability: only the profile can be what refuses it.
  out=$(run $runtime unconfined-U --seccomp-profile unconfined -- unshare -U true); rc=$?
  if [ $rc -ne 0 ] && printf '%s' "$out" | grep -q "Operation not permitted"; then
    skip "$runtime: unprivileged user namespaces are off on this host ($out)"
    skip "$runtime: (needs the previous check)"
  else
    expect_success "$runtime, seccomp unconfined, default caps: unshare -U true works" "$out" $rc
    out=$(run $runtime default-U -- unshare -U true); rc=$?
    expect_eperm "$runtime, default profile, default caps: the same unshare -U fails with EPERM" "$out" $rc
  fi

  out=$(run $runtime sysadmin --cap-add CAP_SYS_ADMIN -- unshare -m true); rc=$?
  expect_success "$runtime, default profile + CAP_SYS_ADMIN: the profile's capability rule lets unshare -m through" \
    "$out" $rc

  out=$(run $runtime privileged --privileged -- sh -c 'unshare -m true && grep Seccomp: /proc/self/status'); rc=$?
  if [ $rc -eq 0 ] && printf '%s' "$out" | grep -Eq 'Seccomp:[[:space:]]+0'; then
    ok "$runtime, privileged: no seccomp filter (Seccomp: 0) and unshare -m true succeeds"
  else
    not_ok "$runtime, privileged: no seccomp filter (Seccomp: 0) and unshare -m true succeeds"
    diag "exit status $rc, output:"; printf '%s\n' "$out" | sed 's/^/#   /' | head -20
  fi
done

tests_done
