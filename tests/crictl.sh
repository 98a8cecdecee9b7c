#!/bin/bash
# The unmodified crictl (cri-tools v1.26.1, built offline by tests/cri-tools-build.sh), the
# CLI Kubernetes node operators use, against a private berthd: each of its image, pod and
# container commands, with images from a loopback docker-registry that berthd reaches as
# registry.k8s.io through a [registry."HOST"] endpoint= mirror. (Interactive exec, attach
# and port-forward go over the streaming server: tests/cri-stream.py and critest.)
source "$(dirname "$0")/lib.sh"
plain_build_only
"$SRCDIR/tests/install-deps.sh" >/dev/null 2>&1 # CNI plugins, docker-registry, skopeo, golang-go

CNI_BIN=/usr/lib/cni
BR=bctl$((RANDOM % 10000))
if ! ip link add "$BR" type bridge 2>/dev/null; then
  echo "1..0 # SKIP this kernel (or container) cannot make bridges"
  exit 77
fi
ip link del "$BR"
TOOLS=$("$SRCDIR/tests/cri-tools-build.sh" 2>"$TEST_TMP/cri-tools-build.log")
case $? in
  0) ;;
  77) echo "1..0 # SKIP $(tail -1 "$TEST_TMP/cri-tools-build.log")"; exit 77 ;;
  *) echo "Bail out! building cri-tools failed:"; sed 's/^/# /' "$TEST_TMP/cri-tools-build.log" | tail -30; exit 1 ;;
esac
tap_plan 54

cleanup_network () {
  local rc=$?
  ip link del "$BR" 2>/dev/null
  (exit $rc)
  tests_cleanup
}
trap cleanup_network EXIT

NET=10.$((200 + RANDOM % 50)).$((RANDOM % 250))
mkdir -p "$TEST_TMP/net.d" "$TEST_TMP/logs"
cat >"$TEST_TMP/net.d/10-crictl.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "berth-crictl-$BR",
  "plugins": [
    {"type": "bridge", "bridge": "$BR", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$NET.0/24"}]], "dataDir": "$TEST_TMP/ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON

IMAGES=$BUILDDIR/tests/cri-images
"$SRCDIR/tests/cri-images/build.sh" "$IMAGES" >"$TEST_TMP/images.log" 2>&1 ||
  { echo "Bail out! building the stand-in images failed"; sed 's/^/# /' "$TEST_TMP/images.log" | tail; exit 1; }
registry_start crictl || { echo "Bail out! no docker-registry"; exit 1; }
IMG=registry.k8s.io/e2e-test-images/busybox:1.29-2
check "skopeo puts the busybox stand-in into the registry" registry_put "$IMAGES/busybox.tar" "$REG/e2e-test-images/busybox:1.29-2"
cat >"$TEST_TMP/berthd.conf" <<CONF
[registry."registry.k8s.io"]
endpoint=http://$REG

[cri]
cni-conf-dir=$TEST_TMP/net.d
cni-bin-dir=$CNI_BIN
CONF
export BERTH_DATADIR=$SRCDIR/data
berthd_start crictl -- --config "$TEST_TMP/berthd.conf" || true
crictl () { timeout 120 "$TOOLS/crictl" --runtime-endpoint "unix://$BERTH_SOCK" --image-endpoint "unix://$BERTH_SOCK" \
  --timeout 60s "$@"; }
jq_ () { python3 -c 'import json, sys
d = json.load(sys.stdin)
for part in sys.argv[1].split("."):
    d = d[int(part)] if isinstance(d, list) else d.get(part) if isinstance(d, dict) else None
print(d if not isinstance(d, (list, dict)) else json.dumps(d))' "$1"; }

# ---- runtime ----
out=$(crictl version 2>&1)
expect_match "crictl version: berth, CRI v1" "RuntimeName: +berth" "$out"
expect_match "…RuntimeApiVersion v1" "RuntimeApiVersion: +v1" "$out"
out=$(crictl info 2>&1)
expect_eq "crictl info: RuntimeReady" True "$(jq_ status.conditions.0.status <<<"$out" 2>&1)"
expect_eq "…NetworkReady" True "$(jq_ status.conditions.1.status <<<"$out" 2>&1)"
expect_eq "…a cniconfig section naming the conf dir, as containerd's" "$TEST_TMP/net.d" "$(jq_ cniconfig.PluginConfDir <<<"$out" 2>&1)"
expect_eq "…and the network loaded" "berth-crictl-$BR" "$(jq_ cniconfig.Networks.0.Config.Name <<<"$out" 2>&1)"
expect_eq "…lastCNILoadStatus OK" OK "$(jq_ lastCNILoadStatus <<<"$out" 2>&1)"

# ---- images ----
out=$(crictl pull "$IMG" 2>&1)
expect_match "crictl pull through the mirror" "^Image is up to date for sha256:[0-9a-f]{64}$" "$out"
ID=${out##*for }
out=$(crictl images 2>&1)
expect_match "crictl images lists it by its real name" "registry.k8s.io/e2e-test-images/busybox +1.29-2 +${ID:7:13}" "$out"
expect_match "crictl images -q: the ID" "^$ID$" "$(crictl images -q 2>&1)"
expect_match "crictl images --digests: its repo digest" "registry.k8s.io/e2e-test-images/busybox +1.29-2 +[0-9a-f]{13}" \
  "$(crictl images --digests 2>&1)"
out=$(crictl inspecti "$IMG" 2>&1)
expect_eq "crictl inspecti NAME: its ID" "$ID" "$(jq_ status.id <<<"$out" 2>&1)"
expect_match "…its image spec in info" '"Cmd"' "$(jq_ info.imageSpec <<<"$out" 2>&1)"
expect_eq "crictl inspecti SHORT-ID (as crictl images shows)" "$ID" "$(crictl inspecti "${ID:7:13}" 2>&1 | jq_ status.id)"
DIGEST=$(crictl inspecti "$IMG" 2>&1 | jq_ status.repoDigests.0)
expect_eq "crictl inspecti REPO-DIGEST" "$ID" "$(crictl inspecti "$DIGEST" 2>&1 | jq_ status.id)"
out=$(crictl imagefsinfo 2>&1)
expect_eq "crictl imagefsinfo: the snapshotter's directory" "$BERTH_ROOT/io.containerd.snapshotter.v1.overlayfs" \
  "$(jq_ status.fsId.mountpoint <<<"$out" 2>&1)"
expect_match "…and its usage" '^[1-9][0-9]{5,7}$' "$(jq_ status.usedBytes.value <<<"$out" 2>&1)"

# ---- pods ----
cat >"$TEST_TMP/pod.json" <<JSON
{"metadata": {"name": "crictl-pod", "namespace": "default", "uid": "crictl-$$", "attempt": 1},
 "hostname": "crictl-host", "log_directory": "$TEST_TMP/logs", "labels": {"app": "crictl"},
 "linux": {"security_context": {"namespace_options": {"network": 0, "pid": 1, "ipc": 0}}}}
JSON
POD=$(crictl runp "$TEST_TMP/pod.json" 2>&1)
expect_match "crictl runp" '^[0-9a-f]{64}$' "$POD"
expect_match "crictl pods lists it, Ready" "^${POD:0:13} .* Ready +crictl-pod +default +1 " "$(crictl pods 2>&1)"
expect_match "crictl pods --label app=crictl -q" "^$POD$" "$(crictl pods --label app=crictl -q 2>&1)"
out=$(crictl inspectp "$POD" 2>&1)
expect_eq "crictl inspectp: SANDBOX_READY" SANDBOX_READY "$(jq_ status.state <<<"$out" 2>&1)"
expect_match "…with an IP of the test's network" "^$NET\.[0-9]+$" "$(jq_ status.network.ip <<<"$out" 2>&1)"

# ---- containers ----
cat >"$TEST_TMP/ctr.json" <<JSON
{"metadata": {"name": "crictl-ctr"}, "image": {"image": "$IMG"},
 "command": ["sh", "-c", "echo hello-crictl; echo oops >&2; trap 'exit 0' TERM; while :; do sleep 1; done"],
 "log_path": "ctr.log", "labels": {"role": "test"}}
JSON
CTR=$(crictl create "$POD" "$TEST_TMP/ctr.json" "$TEST_TMP/pod.json" 2>&1)
expect_match "crictl create" '^[0-9a-f]{64}$' "$CTR"
expect_match "crictl ps -a: Created" "^${CTR:0:13} .* Created +crictl-ctr " "$(crictl ps -a 2>&1)"
check "crictl start" crictl start "$CTR"
expect_match "crictl ps: Running, in its pod" "^${CTR:0:13} .* Running +crictl-ctr +0 +${POD:0:13}" "$(crictl ps 2>&1)"
expect_match "crictl ps --label role=test -q" "^$CTR$" "$(crictl ps --label role=test -q 2>&1)"
out=$(crictl inspect "$CTR" 2>&1)
expect_eq "crictl inspect: CONTAINER_RUNNING" CONTAINER_RUNNING "$(jq_ status.state <<<"$out" 2>&1)"
expect_match "…its pid in info" '^[1-9][0-9]*$' "$(jq_ info.pid <<<"$out" 2>&1)"
expect_eq "crictl exec -s: output of a command" crictl-host "$(crictl exec -s "$CTR" hostname 2>&1)"
expect_match "crictl exec -s: a command's exit status (crictl 1.26 itself exits 1)" "exited with 3" \
  "$(crictl exec -s "$CTR" sh -c 'exit 3' 2>&1)"
for _ in $(seq 50); do grep -q hello-crictl "$TEST_TMP/logs/ctr.log" 2>/dev/null && break; sleep 0.2; done
expect_eq "crictl logs: stdout and stderr" "hello-crictl oops" "$(crictl logs "$CTR" 2>&1 | sort | tr '\n' ' ' | sed 's/ $//')"
expect_eq "crictl logs --tail 1" oops "$(crictl logs --tail 1 "$CTR" 2>&1)"
check "crictl update --memory" crictl update --memory 67108864 "$CTR"
expect_eq "…the cgroup's limit follows" 67108864 \
  "$(crictl exec -s "$CTR" cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || crictl exec -s "$CTR" cat /sys/fs/cgroup/memory.max 2>&1)"
out=$(crictl stats -o json "$CTR" 2>&1)
expect_eq "crictl stats: the container" "$CTR" "$(jq_ stats.0.attributes.id <<<"$out" 2>&1)"
expect_match "…its memory working set" '^[1-9][0-9]*$' "$(jq_ stats.0.memory.workingSetBytes.value <<<"$out" 2>&1)"
out=$(crictl statsp -o json "$POD" 2>&1)
expect_eq "crictl statsp: the pod" "$POD" "$(jq_ stats.0.attributes.id <<<"$out" 2>&1)"
expect_match "…its CPU usage" '^[0-9]+$' "$(jq_ stats.0.linux.cpu.usageCoreNanoSeconds.value <<<"$out" 2>&1)"
SECONDS=0
check "crictl stop (its TERM trap ends it)" crictl stop --timeout 30 "$CTR"
expect_eq "…promptly" yes "$([ "$SECONDS" -lt 20 ] && echo yes || echo "no: ${SECONDS}s")"
out=$(crictl inspect "$CTR" 2>&1)
expect_eq "…CONTAINER_EXITED, exit code 0" "CONTAINER_EXITED 0" "$(jq_ status.state <<<"$out") $(jq_ status.exitCode <<<"$out")"
check "crictl rm" crictl rm "$CTR"
expect_eq "crictl ps -a: gone" "" "$(crictl ps -a -q 2>&1)"
# A stop that reaches the container's init before it handles SIGTERM (the kernel drops
# it then) waited the whole timeout; here the init traps TERM only after 2 s.
cat >"$TEST_TMP/late.json" <<JSON
{"metadata": {"name": "late-trap"}, "image": {"image": "$IMG"},
 "command": ["sh", "-c", "sleep 2; trap 'exit 0' TERM; while :; do sleep 0.1; done"], "log_path": "late.log"}
JSON
LATE=$(crictl create "$POD" "$TEST_TMP/late.json" "$TEST_TMP/pod.json" 2>&1)
crictl start "$LATE" >/dev/null 2>&1
SECONDS=0
crictl stop --timeout 40 "$LATE" >/dev/null 2>&1
out=$(crictl inspect "$LATE" 2>&1)
expect_eq "crictl stop right after start, of an init that traps TERM late: its trap ends it, well before the timeout" \
  "0 yes" "$(jq_ status.exitCode <<<"$out") $([ "$SECONDS" -lt 25 ] && echo yes || echo "no: ${SECONDS}s")"
crictl rm "$LATE" >/dev/null 2>&1

# ---- pod teardown and image removal ----
check "crictl stopp" crictl stopp "$POD"
expect_match "crictl pods: NotReady" "^${POD:0:13} .* NotReady " "$(crictl pods 2>&1)"
check "crictl rmp" crictl rmp "$POD"
expect_eq "crictl pods -q: none" "" "$(crictl pods -q 2>&1)"
check "crictl rmi by name" crictl rmi "$IMG"
expect_eq "crictl images -q: none" "" "$(crictl images -q 2>&1)"
crictl pull "$IMG" >/dev/null 2>&1
check "crictl rmi by ID" crictl rmi "$ID"
expect_eq "…gone again" "" "$(crictl images -q 2>&1)"

tests_done
