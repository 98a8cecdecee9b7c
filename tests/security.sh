#!/bin/bash
# Security checks on a real berthd: the socket's mode and group, non-root clients
# refused, namespaces that never leak into each other (content, images, containers,
# leases, snapshots, tasks), containers that cannot see berthd's socket, state or root,
# and the rule that a client may only name allowed OCI runtime binaries.
source "$(dirname "$0")/lib.sh"
tap_plan 38
"$SRCDIR/tests/install-deps.sh" >/dev/null 2>&1 # binds hugetlb to v1 where crun needs it

NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
GROUP=daemon   # any group that exists on Debian and root is not in by default
GID=$(getent group $GROUP | cut -d: -f3)

# Let other users traverse the temp dirs so that only the socket's own mode decides.
chmod 711 "$TEST_TMP"
mkdir -p "$TEST_TMP/sec"
chmod 711 "$TEST_TMP/sec"
cat >"$TEST_TMP/sec.conf" <<CONF
[berthd]
address-group=$GROUP
[plugin.runtime.task]
allowed-binaries=runc;crun;$(command -v crun)
CONF
make_busybox_image "$TEST_TMP/busybox.tar"
IMAGE=docker.io/library/busybox:latest
berthd_start sec -- --config "$TEST_TMP/sec.conf" || true

# ---- the socket ----
expect_eq "the socket is mode 0660" 660 "$(stat -c %a "$BERTH_SOCK")"
expect_eq "…owned by root and the configured address-group ($GROUP)" "root:$GROUP" "$(stat -c %U:%G "$BERTH_SOCK")"
expect_eq "the state dir lets others only traverse it (0711)" 711 "$(stat -c %a "$BERTH_STATE")"
expect_eq "the root dir is private (0700)" 700 "$(stat -c %a "$BERTH_ROOT")"
out=$("${NOBODY[@]}" ctr --address "$BERTH_SOCK" --timeout 5s version 2>&1) && not_ok "user nobody is refused" \
  || expect_match "user nobody is refused (permission denied on the socket)" "permission denied" "$out"
out=$(runuser -u nobody -- ctr --address "$BERTH_SOCK" --timeout 5s namespaces ls 2>&1) && not_ok "runuser -u nobody is refused too" \
  || expect_match "runuser -u nobody is refused too" "permission denied" "$out"
check "a non-root member of the address-group gets through" \
  setpriv --reuid=65534 --regid=65534 --groups="$GID" ctr --address "$BERTH_SOCK" --timeout 5s version
out=$("${NOBODY[@]}" ls "$BERTH_ROOT" 2>&1) && not_ok "nobody cannot list berthd's root" \
  || expect_match "nobody cannot list berthd's root" "Permission denied" "$out"

# ---- namespaces ----
bctr -n sec-a images import "$TEST_TMP/busybox.tar" >/dev/null
manifest=$(bctr -n sec-a images ls | awk -v i=$IMAGE '$1 == i {print $3}')
layer=$(bctr -n sec-a content ls -q | tail -1)
expect_match "namespace A holds the image" "^sha256:" "$manifest"
expect_none "B lists none of A's content" '' bctr -n sec-b content ls -q
out=$(bctr -n sec-b content get "$manifest" 2>&1) && not_ok "B cannot read A's blob by digest" \
  || expect_match "B cannot read A's blob by digest (not found)" "not found" "$out"
out=$(bctr -n sec-b content rm "$layer" 2>&1)
check "…nor delete it from A" bash -c "ctr --address $BERTH_SOCK -n sec-a content get $layer >/dev/null"
expect_none "B lists none of A's images" '' bctr -n sec-b images ls -q
bctr -n sec-b images rm $IMAGE >/dev/null 2>&1
expect_eq "deleting A's image name in B leaves A's image" "$IMAGE" "$(bctr -n sec-a images ls -q)"
bctr -n sec-a containers create $IMAGE sec-c1 >/dev/null
expect_none "B lists none of A's containers" '' bctr -n sec-b containers ls -q
out=$(bctr -n sec-b containers info sec-c1 2>&1) && not_ok "B cannot see A's container by id" \
  || expect_match "B cannot see A's container by id" "not found" "$out"
bctr -n sec-b containers rm sec-c1 >/dev/null 2>&1
expect_eq "…nor delete it" "sec-c1" "$(bctr -n sec-a containers ls -q)"
expect_none "B lists none of A's snapshots" "tail -n +2" bctr -n sec-b snapshots ls
out=$(bctr -n sec-b snapshots info sec-c1 2>&1) && not_ok "B cannot stat A's snapshot by key" \
  || expect_match "B cannot stat A's snapshot by key" "not found|does not exist" "$out"
bctr -n sec-b snapshots rm sec-c1 >/dev/null 2>&1
expect_match "…nor remove it" "sec-c1" "$(bctr -n sec-a snapshots ls)"
bctr -n sec-a leases create --id sec-lease >/dev/null
expect_none "B lists none of A's leases" '' bctr -n sec-b leases ls -q
bctr -n sec-b leases rm sec-lease >/dev/null 2>&1
expect_eq "…nor deletes them" "sec-lease" "$(bctr -n sec-a leases ls -q)"
bctr -n sec-a run -d $IMAGE sec-t1 sleep 300 >/dev/null
expect_none "B lists none of A's tasks" '' bctr -n sec-b tasks ls -q
out=$(bctr -n sec-b tasks kill -s KILL sec-t1 2>&1) && not_ok "B cannot signal A's task" \
  || expect_match "B cannot signal A's task" "not found" "$out"
expect_match "…which still runs in A" "RUNNING" "$(bctr -n sec-a tasks ls | awk '$1 == "sec-t1"')"
out=$(bctr -n ../sec-a containers ls 2>&1) && not_ok "a namespace name with a path in it is refused" \
  || expect_match "a namespace name with a path in it is refused" "namespace" "$out"
out=$(bctr -n sec-a containers create $IMAGE ../escape 2>&1) && not_ok "a container id with a path in it is refused" \
  || expect_match "a container id with a path in it is refused" "invalid|identifier|not a valid" "$out"

# ---- what a container sees ----
RUN="timeout 60 ctr --address $BERTH_SOCK -n sec-a run --rm"
seen=$($RUN $IMAGE sec-look sh -c "for p in '$BERTH_SOCK' '$BERTH_STATE' '$BERTH_ROOT' '$TEST_TMP'; do [ -e \"\$p\" ] && echo \"sees \$p\"; done; echo ok" 2>&1)
expect_eq "a container sees neither berthd's socket, state, root nor the test dir" ok "$seen"
# berth[d]: a pattern that the container's own command line does not match.
expect_eq "…nor berthd's process: its pid namespace holds only its own (sh is pid 1)" "1 sh" \
  "$($RUN $IMAGE sec-ps sh -c "grep -l 'berth[d]' /proc/[0-9]*/cmdline 2>/dev/null; echo 1 \$(cat /proc/1/comm)" 2>&1)"

# ---- the runtime binary a client may name ----
out=$($RUN --runc-binary /bin/sh $IMAGE sec-bin1 true 2>&1) && not_ok "ctr --runc-binary /bin/sh is refused" \
  || expect_match "ctr --runc-binary /bin/sh is refused with PERMISSION_DENIED naming allowed-binaries" \
       "PermissionDenied|permission denied.*allowed-binaries|allowed-binaries" "$out"
expect_none "…and left no container behind" "grep sec-bin1" bctr -n sec-a containers ls -q
out=$($RUN --runc-binary true $IMAGE sec-bin2 true 2>&1) && not_ok "a bare name not in allowed-binaries is refused" \
  || expect_match "a bare name not in allowed-binaries is refused" "allowed-binaries" "$out"
out=$($RUN --runc-binary ../../usr/sbin/runc $IMAGE sec-bin3 true 2>&1) && not_ok "a relative path is refused" \
  || expect_match "a relative path is refused" "allowed-binaries" "$out"
expect_eq "an allowed bare name runs (crun)" hi "$($RUN --runc-binary crun $IMAGE sec-bin4 echo hi 2>&1)"
expect_eq "an absolute path listed in allowed-binaries runs" hi "$($RUN --runc-binary "$(command -v crun)" $IMAGE sec-bin5 echo hi 2>&1)"

bctr -n sec-a tasks kill -s KILL sec-t1 >/dev/null 2>&1; sleep 0.5
bctr -n sec-a tasks rm sec-t1 >/dev/null 2>&1; bctr -n sec-a containers rm sec-t1 >/dev/null 2>&1
berthd_stop

# The default allows runc and crun by name only; a config can narrow it.
cat >"$TEST_TMP/narrow.conf" <<CONF
[plugin.runtime.task]
allowed-binaries=runc
CONF
berthd_start narrow -- --config "$TEST_TMP/narrow.conf" || true
bctr images import "$TEST_TMP/busybox.tar" >/dev/null
RUN="timeout 60 ctr --address $BERTH_SOCK run --rm"
out=$($RUN --runc-binary crun $IMAGE n-crun true 2>&1) && not_ok "allowed-binaries=runc refuses crun" \
  || expect_match "allowed-binaries=runc refuses crun" "allowed-binaries" "$out"
expect_eq "…and still runs runc" hi "$($RUN --runc-binary runc $IMAGE n-runc echo hi 2>&1)"
berthd_stop
berthd_start plain || true
expect_eq "with no address-group the socket stays root:root" "root:root" "$(stat -c %U:%G "$BERTH_SOCK")"
berthd_stop
tests_done
