#!/bin/bash
# CRI runtime handlers from configuration ([plugin.cri] runtime-handlers), with gVisor's
# runsc as an OCI runtime under berth-shim: `ctr run --runc-binary runsc` and a crictl pod
# whose RuntimeClass handler is "runsc" see gVisor's kernel, not the host's; a handler
# configured to a shim v2 runtime (Debian's containerd-shim-runc-v2, through the shimv2
# plugin) runs a pod's container; unknown handlers and a malformed entry are refused.
source "$(dirname "$0")/lib.sh"
plain_build_only
require_plugins local walking overlayfs oci shimv2
"$SRCDIR/tests/install-deps.sh" >/dev/null 2>&1 # runsc, CNI plugins, golang-go
RUNSC=$(command -v runsc || true)
if [ -z "$RUNSC" ]; then echo "1..0 # SKIP runsc (Debian package runsc) is not installed"; exit 0; fi
if ! out=$(runsc --version 2>&1); then echo "1..0 # SKIP runsc --version fails here: $out"; exit 0; fi
SHIM=$(command -v containerd-shim-runc-v2 || true)
TOOLS=$("$SRCDIR/tests/cri-tools-build.sh" 2>"$TEST_TMP/cri-tools-build.log")
case $? in
  0) ;;
  77) echo "1..0 # SKIP $(tail -1 "$TEST_TMP/cri-tools-build.log")"; exit 0 ;;
  *) echo "Bail out! building cri-tools failed:"; sed 's/^/# /' "$TEST_TMP/cri-tools-build.log" | tail -30; exit 1 ;;
esac
tap_plan 13

HOST_KERNEL=$(uname -r)
# runsc refuses its own network stack in what it takes for the host's network namespace
# ("cannot run with network enabled in root network namespace"): ctr run leaves the
# container there, and so it judges a pod's sandbox too: both go through a wrapper adding
# --network=none (pod networking under gVisor is not covered here).
printf '#!/bin/sh\nexec %s --network=none "$@"\n' "$RUNSC" >"$TEST_TMP/runsc-nonet"
chmod 755 "$TEST_TMP/runsc-nonet"
# Pods get a network namespace holding only lo: each runsc sandbox runs its own network
# stack over what it finds there.
mkdir -p "$TEST_TMP/net.d" "$TEST_TMP/logs"
echo '{"cniVersion": "1.0.0", "name": "berth-runsc-lo", "plugins": [{"type": "loopback"}]}' \
  >"$TEST_TMP/net.d/10-lo.conflist"
cat >"$TEST_TMP/berthd.conf" <<CONF
[plugin.runtime.task]
allowed-binaries=runc;crun;$RUNSC;$TEST_TMP/runsc-nonet

[plugin.runtime.shimv2]
runtimes=io.containerd.runcshim.v2=${SHIM:-/nonexistent/containerd-shim-runc-v2}

[plugin.cri]
runtime-handlers=runc;crun;runsc=:$TEST_TMP/runsc-nonet;runc-shim-v2=io.containerd.runcshim.v2

[cri]
cni-conf-dir=$TEST_TMP/net.d
cni-bin-dir=/usr/lib/cni
CONF
berthd_start runsc -- --config "$TEST_TMP/berthd.conf" || true
make_busybox_image "$TEST_TMP/busybox.tar"
IMAGE=docker.io/library/busybox:latest
crictl () { timeout 120 "$TOOLS/crictl" --timeout 60s --runtime-endpoint "unix://$BERTH_SOCK" --image-endpoint "unix://$BERTH_SOCK" "$@"; }
# containerd-shim-runc-v2 keeps runc's state under /run/containerd/runc/<namespace>: the
# CRI's namespace is k8s.io, shared with any other user of that shim on this host.
our_shims () { pgrep -f "containerd-shim-runc-v2 .*-address $BERTH_SOCK( |$)" 2>/dev/null; }
stop_our_shims () {
  local shim
  for shim in $(our_shims); do kill -KILL $(pgrep -P "$shim" 2>/dev/null) "$shim" 2>/dev/null; done
}
trap 'stop_our_shims; tests_cleanup' EXIT

# ---- ctr run --runc-binary runsc ----
bctr images import "$TEST_TMP/busybox.tar" >/dev/null
bctr -n k8s.io images import "$TEST_TMP/busybox.tar" >/dev/null
out=$(timeout 120 ctr --address "$BERTH_SOCK" run --rm --runc-binary "$TEST_TMP/runsc-nonet" "$IMAGE" runsc-$$ uname -r 2>&1)
if [[ "$out" =~ ^[0-9]+\.[0-9]+[^[:space:]]*$ ]] && [ "$out" != "$HOST_KERNEL" ]; then
  ok "ctr run --runc-binary runsc: uname -r is gVisor's ($out), not the host's ($HOST_KERNEL)"
else
  not_ok "ctr run --runc-binary runsc: uname -r is gVisor's, not the host's ($HOST_KERNEL)"
  diag "got: $out"
fi
expect_match "…and dmesg is gVisor's" "gVisor" \
  "$(timeout 120 ctr --address "$BERTH_SOCK" run --rm --runc-binary "$TEST_TMP/runsc-nonet" "$IMAGE" runsc-dmesg-$$ dmesg 2>&1)"

# ---- the CRI: handlers from [plugin.cri] runtime-handlers ----
cat >"$TEST_TMP/pod.json" <<JSON
{"metadata": {"name": "gvisor", "namespace": "default", "uid": "runsc-$$"}, "log_directory": "$TEST_TMP/logs"}
JSON
cat >"$TEST_TMP/ctr.json" <<JSON
{"metadata": {"name": "uname"}, "image": {"image": "$IMAGE"}, "log_path": "uname.log",
 "command": ["sh", "-c", "uname -r; dmesg | head -1; sleep 300"]}
JSON
POD=$(crictl runp --runtime runsc "$TEST_TMP/pod.json" 2>"$TEST_TMP/runp.err")
expect_match "crictl runp --runtime runsc starts a pod" "^[0-9a-f]{64}( |$)" "$POD $(cat "$TEST_TMP/runp.err")"
expect_match "…whose sandbox status names its handler" '"runtimeHandler": "runsc"' "$(crictl inspectp "$POD" 2>&1)"
C=$(crictl create "$POD" "$TEST_TMP/ctr.json" "$TEST_TMP/pod.json" 2>&1)
check "a container in it starts" crictl start "$C"
for _ in $(seq 60); do grep -q "stdout F" "$TEST_TMP/logs/uname.log" 2>/dev/null && break; sleep 0.5; done
logs=$(crictl logs "$C" 2>&1)
kernel=$(printf '%s\n' "$logs" | head -1)
if [ -n "$kernel" ] && [ "$kernel" != "$HOST_KERNEL" ] && [[ "$kernel" =~ ^[0-9]+\.[0-9]+ ]]; then
  ok "…and sees gVisor's kernel: uname -r is $kernel, not the host's $HOST_KERNEL"
else
  not_ok "…and sees gVisor's kernel, not the host's ($HOST_KERNEL)"
  diag "logs: $logs"
fi
expect_match "…dmesg is gVisor's" "gVisor" "$logs"
expect_eq "crictl exec in it runs under gVisor too" "$kernel" "$(crictl exec -s "$C" uname -r 2>&1)"
crictl stopp "$POD" >/dev/null 2>&1
crictl rmp "$POD" >/dev/null 2>&1

# ---- a handler on a shim v2 runtime: containerd's own shim ----
if [ -z "$SHIM" ]; then
  skip "a handler on containerd-shim-runc-v2: it is not installed"
  skip "…"
else
  sed "s/runsc-$$/shimv2-$$/; s/gvisor/on-shim-v2/" "$TEST_TMP/pod.json" >"$TEST_TMP/pod2.json"
  POD2=$(crictl runp --runtime runc-shim-v2 "$TEST_TMP/pod2.json" 2>&1)
  expect_match "crictl runp --runtime runc-shim-v2 starts a pod" "^[0-9a-f]{64}$" "$POD2"
  C2=$(crictl create "$POD2" "$TEST_TMP/ctr.json" "$TEST_TMP/pod2.json" 2>&1)
  crictl start "$C2" >"$TEST_TMP/start2.out" 2>&1
  expect_eq "…its container runs on the host's kernel, under containerd-shim-runc-v2" "$HOST_KERNEL:1" \
    "$(crictl exec -s "$C2" uname -r 2>&1):$(pgrep -f "containerd-shim-runc-v2 .*-address $BERTH_SOCK" | wc -l | tr -d ' ' | sed 's/^[1-9][0-9]*$/1/')"
  crictl stopp "$POD2" >/dev/null 2>&1
  crictl rmp "$POD2" >/dev/null 2>&1
fi

# ---- refusals ----
expect_match "an unknown handler is refused, naming the configured ones" \
  'unknown runtime handler .*nosuch.*runsc.*runc-shim-v2' "$(crictl runp --runtime nosuch "$TEST_TMP/pod.json" 2>&1)"
printf '[plugin.cri]\nruntime-handlers=bad=\n' >"$TEST_TMP/bad.conf"
berthd_start bad -- --config "$TEST_TMP/bad.conf" || true
expect_match "a handler naming neither a runtime nor a binary: every pod refused, with the file and line" \
  "bad.conf:2: runtime handler .*bad.* names neither" "$(crictl runp "$TEST_TMP/pod.json" 2>&1)"
printf '[plugin.cri]\nruntime-handler=x\n' >"$TEST_TMP/typo.conf"
berthd_start typo -- --config "$TEST_TMP/typo.conf" || true
expect_match "…an unknown key in [plugin.cri] too" 'typo.conf:2: unknown key .*runtime-handler.* in \[plugin.cri\]' \
  "$(crictl runp "$TEST_TMP/pod.json" 2>&1)"
tests_done
