#!/bin/bash
# Kubernetes' CRI (runtime.v1) on berthd's socket, driven the way kubelet drives it, by
# a python client whose stubs are generated here from core/services/cri/api.proto: pull from a
# loopback registry, pod sandboxes on a CNI bridge network of this test's own (its
# bridge, subnet and IPAM state are private), busybox httpd reached at the pod's IP and
# through a host port, ExecSync, CRI-format logs and their reopening, stats, and that
# stopping and removing leave no network namespace, veth, mount, cgroup or iptables
# chain behind. Bad requests get the codes kubelet expects.
source "$(dirname "$0")/lib.sh"
"$SRCDIR/tests/install-deps.sh" >/dev/null 2>&1 # CNI plugins, grpc_tools, docker-registry, skopeo

PY=/usr/bin/python3 # Debian's, with grpcio and grpc_tools
CNI_BIN=/usr/lib/cni
BR=bcri$((RANDOM % 10000))
if ! ip link add "$BR" type bridge 2>/dev/null; then
  echo "1..0 # SKIP this kernel (or container) cannot make bridges"
  exit 77
fi
ip link del "$BR"
for p in bridge host-local loopback portmap; do
  [ -x "$CNI_BIN/$p" ] || { echo "1..0 # SKIP CNI plugin $CNI_BIN/$p missing (containernetworking-plugins)"; exit 77; }
done
tap_plan 124

NET=10.$((200 + RANDOM % 50)).$((RANDOM % 250))
cleanup_network () {
  local rc=$?  # the test's own status: tests_cleanup exits with it
  [ -n "${CRI_KEEP_LOG:-}" ] && cp "$BERTHD_LOG" "$CRI_KEEP_LOG"
  ip link del "$BR" 2>/dev/null
  # portmap's chains, should a failed run have left any.
  iptables-save -t nat 2>/dev/null | grep -q "berth-cri-test-$BR" && diag "iptables rules left by this test"
  (exit $rc)
  tests_cleanup
}
trap cleanup_network EXIT

mkdir -p "$TEST_TMP/stubs" "$TEST_TMP/net.d" "$TEST_TMP/logs"
$PY -m grpc_tools.protoc -I"$SRCDIR/core/services/cri" --python_out="$TEST_TMP/stubs" --grpc_python_out="$TEST_TMP/stubs" \
  "$SRCDIR/core/services/cri/api.proto" || { echo "Bail out! grpc_tools cannot compile core/services/cri/api.proto"; exit 1; }
# cri SERVICE METHOD [JSON]: the response as JSON, or "error: CODE: …" (and status 3).
cri () { $PY "$SRCDIR/tests/cri-client.py" "$TEST_TMP/stubs" "$BERTH_SOCK" "$@"; }
rt () { cri RuntimeService "$@"; }
img () { cri ImageService "$@"; }
# jget PATH [JSON]: one field of a response ("status.network.ip"; "stdout" bytes decoded).
jget () {
  $PY -c '
import base64, json, sys
d = json.loads(sys.argv[2] if len(sys.argv) > 2 else sys.stdin.read())
for part in sys.argv[1].split("."):
    d = d[int(part)] if isinstance(d, list) else d.get(part)
if sys.argv[1].split(".")[-1] in ("stdout", "stderr"):
    d = base64.b64decode(d or "").decode()
print(d if not isinstance(d, (list, dict)) else json.dumps(d), end="" if isinstance(d, str) and d.endswith("\n") else "\n")
' "$@"
}

cat >"$TEST_TMP/net.d/10-test.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "berth-cri-test-$BR",
  "plugins": [
    {"type": "bridge", "bridge": "$BR", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$NET.0/24"}]], "dataDir": "$TEST_TMP/ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON

make_busybox_image "$TEST_TMP/busybox.tar"
registry_start reg || true
PLAIN=$REG
htpasswd -Bbn kube s3cret >"$TEST_TMP/htpasswd"
registry_start auth htpasswd "$TEST_TMP/htpasswd" || true
AUTH=$REG
REG=$PLAIN
cat >"$TEST_TMP/berthd.conf" <<CONF
[registry."$REG"]
plain-http=true

[registry."$AUTH"]
plain-http=true

[cri]
cni-conf-dir=$TEST_TMP/net.d
cni-bin-dir=$CNI_BIN
CONF
export BERTH_DATADIR=$SRCDIR/data
berthd_start cri -- --config "$TEST_TMP/berthd.conf" || true
STATE=$BERTH_STATE

# ---- version, status, images ----
out=$(rt Version '{"version": "v1"}')
expect_eq "Version names berth" berth "$(jget runtime_name "$out")"
expect_eq "…and CRI v1" v1 "$(jget runtime_api_version "$out")"
out=$(rt Status)
expect_eq "Status: RuntimeReady" True "$(jget status.conditions.0.status "$out")"
expect_eq "Status: NetworkReady (a CNI configuration is there)" True "$(jget status.conditions.1.status "$out")"
check "skopeo puts busybox into the loopback registry" registry_put "$TEST_TMP/busybox.tar" "$REG/busybox:latest"
out=$(img PullImage "{\"image\": {\"image\": \"$REG/busybox:latest\"}}")
IMAGE_ID=$(jget image_ref "$out")
expect_match "PullImage answers the image ID (its config digest)" '^sha256:[0-9a-f]{64}$' "$IMAGE_ID"
out=$(img ImageStatus "{\"image\": {\"image\": \"$REG/busybox:latest\"}}")
expect_eq "ImageStatus by name gives that ID" "$IMAGE_ID" "$(jget image.id "$out")"
expect_match "…with its repo digest" "$REG/busybox@sha256:" "$(jget image.repo_digests "$out")"
expect_match "ListImages lists the tag" "\"$REG/busybox:latest\"" "$(img ListImages)"
expect_eq "ImageStatus of an unknown image: no image, no error" None \
  "$(jget image "$(img ImageStatus '{"image": {"image": "nosuch/image:1"}}')")"
out=$(img ImageFsInfo)
expect_eq "ImageFsInfo reports the snapshotter's directory, as containerd does" \
  "$BERTH_ROOT/io.containerd.snapshotter.v1.overlayfs" "$(jget image_filesystems.0.fs_id.mountpoint "$out")"
used=$(jget image_filesystems.0.used_bytes.value "$out")
expect_eq "…with what the image there uses, not the whole filesystem's usage" yes \
  "$([ "$used" -gt 100000 ] && [ "$used" -lt 20000000 ] && echo yes || echo "no: $used")"
check "skopeo puts busybox into the registry with Basic auth" registry_put "$TEST_TMP/busybox.tar" "$AUTH/private:1" --dest-creds kube:s3cret
expect_match "PullImage from it without credentials: UNAUTHENTICATED" "^error: UNAUTHENTICATED" \
  "$(img PullImage "{\"image\": {\"image\": \"$AUTH/private:1\"}}")"
expect_match "…with the request's username and password: pulled" '"image_ref": "sha256:' \
  "$(img PullImage "{\"image\": {\"image\": \"$AUTH/private:1\"}, \"auth\": {\"username\": \"kube\", \"password\": \"s3cret\"}}")"
check "…and with docker's base64 auth" img PullImage \
  "{\"image\": {\"image\": \"$AUTH/private:1\"}, \"auth\": {\"auth\": \"$(printf kube:s3cret | base64)\"}}"

# ---- a pod on the bridge network ----
HP=$(free_port)
pod_config () { # NAME: a PodSandboxConfig
  cat <<JSON
{"metadata": {"name": "$1", "uid": "uid-$1", "namespace": "test", "attempt": 0},
 "hostname": "$1", "log_directory": "$TEST_TMP/logs/$1",
 "dns_config": {"servers": ["10.0.0.10"], "searches": ["example.test"]},
 "port_mappings": [{"protocol": "TCP", "container_port": 8080, "host_port": $2}],
 "labels": {"app": "$1"}, "annotations": {"note": "kept as given"},
 "linux": {"security_context": {"namespace_options": {"network": "POD", "pid": "CONTAINER", "ipc": "POD"}}}}
JSON
}
out=$(rt RunPodSandbox "{\"config\": $(pod_config pod1 "$HP")}")
POD1=$(jget pod_sandbox_id "$out")
expect_match "RunPodSandbox makes a sandbox" '^[0-9a-f]{64}$' "$POD1"
[ -n "$POD1" ] || POD1=none
out=$(rt PodSandboxStatus "{\"pod_sandbox_id\": \"$POD1\"}")
expect_eq "…READY" SANDBOX_READY "$(jget status.state "$out")"
IP1=$(jget status.network.ip "$out")
expect_match "…with an IP from the test's subnet" "^$NET\.[0-9]+$" "$IP1"
expect_eq "…annotations returned unaltered" "kept as given" "$(jget status.annotations.note "$out")"
check "its network namespace is a file under the state dir" test -f "$STATE/cri/netns/$POD1"
check "its hosts, hostname and resolv.conf are on disk under the root, not on the state tmpfs" \
  test -f "$BERTH_ROOT/io.containerd.grpc.v1.cri/sandboxes/$POD1/hosts" -a \
  -f "$BERTH_ROOT/io.containerd.grpc.v1.cri/sandboxes/$POD1/hostname" -a \
  -f "$BERTH_ROOT/io.containerd.grpc.v1.cri/sandboxes/$POD1/resolv.conf" -a ! -e "$STATE/cri/sandboxes/$POD1"
expect_match "eth0 inside holds the pod IP" "inet $IP1/24" "$(nsenter --net="$STATE/cri/netns/$POD1" ip -4 addr show eth0 2>&1)"
expect_match "a veth of the pod is on the test bridge" "master $BR" "$(ip -o link show master "$BR" 2>&1)"
out=$(rt RunPodSandbox "{\"config\": $(pod_config pod1 "$HP")}")
expect_match "the same pod again: ALREADY_EXISTS" "^error: ALREADY_EXISTS" "$out"

container_config () { # NAME COMMAND-JSON
  cat <<JSON
{"metadata": {"name": "$1", "attempt": 0}, "image": {"image": "$REG/busybox:latest"},
 "command": $2, "envs": [{"key": "GREETING", "value": "hello-from-pod"}],
 "log_path": "$1/0.log", "labels": {"c": "$1"},
 "linux": {"security_context": {"seccomp": {"profile_type": "RuntimeDefault"}}}}
JSON
}
# The container commands carry this test's mark, so the leftover check at the end finds
# its own processes and not those of another run of this test on the same machine.
MARK=${TEST_TMP##*/}
WWW=/www-$MARK
WEB_CMD='["sh", "-c", "trap \"echo bye; exit 7\" TERM; mkdir -p '$WWW' && echo $GREETING >'$WWW'/index.html && echo started && echo oops >&2 && httpd -f -p 8080 -h '$WWW' & wait"]'
out=$(rt CreateContainer "{\"pod_sandbox_id\": \"$POD1\", \"config\": $(container_config web "$WEB_CMD"), \"sandbox_config\": $(pod_config pod1 "$HP")}")
WEB=$(jget container_id "$out")
expect_match "CreateContainer" '^[0-9a-f]{64}$' "$WEB"
expect_eq "…CREATED" CONTAINER_CREATED "$(jget status.state "$(rt ContainerStatus "{\"container_id\": \"$WEB\"}")")"
out=$(rt CreateContainer "{\"pod_sandbox_id\": \"$POD1\", \"config\": $(container_config web "$WEB_CMD")}")
expect_match "the same container name in the pod again: ALREADY_EXISTS" "^error: ALREADY_EXISTS" "$out"
check "StartContainer" rt StartContainer "{\"container_id\": \"$WEB\"}"
expect_eq "…RUNNING" CONTAINER_RUNNING "$(jget status.state "$(rt ContainerStatus "{\"container_id\": \"$WEB\"}")")"
for _ in $(seq 50); do body=$(http_get "http://$IP1:8080/" 2>/dev/null) && break; sleep 0.2; done
expect_eq "busybox httpd in the pod answers at the pod IP" hello-from-pod "${body:-}"
expect_eq "…and through the host port (portmap)" hello-from-pod "$(http_get "http://$NET.1:$HP/" 2>&1)"

# Exec, Attach and PortForward answer with a URL of the streaming server on loopback.
stream () { timeout 60 $PY "$SRCDIR/tests/cri-stream.py" "$1" "${2/http:/ws:}" "${@:3}" 2>&1; }
exec_url () { # CMD-JSON [STDIN]
  jget url "$(rt Exec "{\"container_id\": \"$WEB\", \"cmd\": $1, \"stdin\": ${2:-false}, \"stdout\": true, \"stderr\": true}")"
}
url=$(exec_url '["echo", "hello-exec"]')
expect_match "Exec: a URL of the streaming server" '^http://127\.0\.0\.1:[0-9]+/exec/[0-9a-f]{32}$' "$url"
out=$(stream channels "$url")
expect_eq "…the WebSocket speaks v5.channel.k8s.io" v5.channel.k8s.io "$(jget protocol "$out")"
expect_eq "…stdout on channel 1" hello-exec "$(jget 1 "$out" | tr -d '\n')"
expect_eq "…and a Success status on channel 3" "Success {}" \
  "$(jget 3 "$out" | $PY -c 'import json, sys; s = json.load(sys.stdin); print(s["status"], json.dumps(s["metadata"]))')"
expect_match "the token again: 404" "^status 404$" "$(stream channels "$url")"
expect_match "an unknown token: 404" "^status 404$" "$(stream channels "${url%/*}/0123456789abcdef0123456789abcdef")"
out=$(stream channels "$(exec_url '["sh", "-c", "echo to-err >&2; exit 3"]')")
expect_eq "Exec exiting 3: stderr on channel 2" to-err "$(jget 2 "$out" | tr -d '\n')"
expect_eq "…a NonZeroExitCode status whose ExitCode cause is 3" "Failure NonZeroExitCode ExitCode 3" \
  "$(jget 3 "$out" | $PY -c 'import json, sys; s = json.load(sys.stdin); c = s["details"]["causes"][0]; print(s["status"], s["reason"], c["reason"], c["message"])')"
out=$(stream channels "$(exec_url '["cat"]' true)" "$(printf 'line one\nline two\n')")
expect_eq "Exec of cat with stdin echoes it (stdin closed by v5's close message)" "$(printf 'line one\nline two')" "$(jget 1 "$out")"
expect_eq "…and ends with Success" Success "$(jget 3 "$out" | $PY -c 'import json, sys; print(json.load(sys.stdin)["status"])')"
url=$(jget url "$(rt PortForward "{\"pod_sandbox_id\": \"$POD1\", \"port\": [8080]}")")
expect_match "PortForward: a URL of the streaming server" '^http://127\.0\.0\.1:[0-9]+/portforward/[0-9a-f]{32}$' "$url"
out=$(stream forward "$url" 'GET / HTTP/1.0\r\n\r\n')
expect_match "…both channels open with the port, little endian" '"ports": \[8080, 8080\]' "$out"
expect_match "…busybox httpd in the pod answers through it" "hello-from-pod" "$(jget data "$out")"
url=$(jget url "$(rt PortForward "{\"pod_sandbox_id\": \"$POD1\"}")")
out=$(stream forward "$url?ports=8081" "x")
expect_match "PortForward to a closed port (from ?ports=): the error channel says so" "8081.*refused" "$(jget error "$out")"
out=$(rt ExecSync "{\"container_id\": \"$WEB\", \"cmd\": [\"sh\", \"-c\", \"echo out; echo err >&2; hostname; exit 3\"], \"timeout\": 30}")
expect_eq "ExecSync: stdout" "$(printf 'out\npod1\n')" "$(jget stdout "$out")"
expect_eq "ExecSync: stderr" err "$(jget stderr "$out")"
expect_eq "ExecSync: exit code" 3 "$(jget exit_code "$out")"
expect_match "the pod's DNS config is the container's resolv.conf" "nameserver 10.0.0.10" \
  "$(jget stdout "$(rt ExecSync "{\"container_id\": \"$WEB\", \"cmd\": [\"cat\", \"/etc/resolv.conf\"]}")")"
out=$(rt ExecSync "{\"container_id\": \"$WEB\", \"cmd\": [\"sleep\", \"30\"], \"timeout\": 1}")
expect_match "ExecSync past its timeout: DEADLINE_EXCEEDED" "^error: DEADLINE_EXCEEDED" "$out"

expect_match "RuntimeDefault puts the container under seccomp (filter mode)" "Seccomp:[[:space:]]+2" \
  "$(jget stdout "$(rt ExecSync "{\"container_id\": \"$WEB\", \"cmd\": [\"grep\", \"Seccomp:\", \"/proc/self/status\"]}")")"

# berthd restarts; the pod and its containers carry on, and it knows them again.
berthd_stop
berthd_start cri -- --config "$TEST_TMP/berthd.conf" || true
expect_eq "after a berthd restart the pod is still READY" SANDBOX_READY \
  "$(jget status.state "$(rt PodSandboxStatus "{\"pod_sandbox_id\": \"$POD1\"}")")"
expect_eq "…its container still answers ExecSync" pod1 \
  "$(jget stdout "$(rt ExecSync "{\"container_id\": \"$WEB\", \"cmd\": [\"hostname\"]}")" | tr -d '\n')"

LOG=$TEST_TMP/logs/pod1/web/0.log
expect_match "stdout in the CRI log format" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{9}Z stdout F started$' "$(cat "$LOG" 2>&1)"
expect_match "…and stderr" '^[0-9T:.-]+Z stderr F oops$' "$(cat "$LOG" 2>&1)"
out=$(rt ContainerStatus "{\"container_id\": \"$WEB\"}")
expect_eq "ContainerStatus gives the log path" "$LOG" "$(jget status.log_path "$out")"
out=$(rt ContainerStats "{\"container_id\": \"$WEB\"}")
expect_match "ContainerStats: memory from the cgroup" '^[1-9][0-9]*$' "$(jget stats.memory.working_set_bytes.value "$out")"
expect_match "ListContainerStats has it" "$WEB" "$(rt ListContainerStats)"
expect_match "PodSandboxStats sums its containers" '"usage_core_nano_seconds"' "$(rt PodSandboxStats "{\"pod_sandbox_id\": \"$POD1\"}")"

# A ticker whose log kubelet rotates: after ReopenContainerLog the new file fills.
TICK_CMD='["sh", "-c", "while true; do echo tick; sleep 0.1; : '$MARK'; done"]'
out=$(rt CreateContainer "{\"pod_sandbox_id\": \"$POD1\", \"config\": $(container_config ticker "$TICK_CMD")}")
TICK=$(jget container_id "$out")
rt StartContainer "{\"container_id\": \"$TICK\"}" >/dev/null
sleep 0.5
mv "$TEST_TMP/logs/pod1/ticker/0.log" "$TEST_TMP/logs/pod1/ticker/0.log.1"
check "ReopenContainerLog" rt ReopenContainerLog "{\"container_id\": \"$TICK\"}"
sleep 0.5
expect_match "…the new log file gets the lines" "stdout F tick" "$(cat "$TEST_TMP/logs/pod1/ticker/0.log" 2>&1)"
url=$(jget url "$(rt Attach "{\"container_id\": \"$TICK\", \"stdout\": true, \"stderr\": true}")")
expect_match "Attach: a URL of the streaming server" '^http://127\.0\.0\.1:[0-9]+/attach/[0-9a-f]{32}$' "$url"
out=$(timeout 30 $PY "$SRCDIR/tests/cri-stream.py" channels "${url/http:/ws:}" "" tick 2>&1)
expect_match "…receives a line the container prints" '"1": "tick\\n' "$out"
# A container with a terminal: its log is the terminal's output as it is.
out=$(rt CreateContainer "{\"pod_sandbox_id\": \"$POD1\", \"config\": {\"metadata\": {\"name\": \"tty\"},
  \"image\": {\"image\": \"$REG/busybox:latest\"}, \"tty\": true, \"log_path\": \"tty/0.log\",
  \"command\": [\"sh\", \"-c\", \"while true; do echo tty-tick; sleep 0.1; done\"]}}")
TTY=$(jget container_id "$out")
rt StartContainer "{\"container_id\": \"$TTY\"}" >/dev/null
url=$(jget url "$(rt Attach "{\"container_id\": \"$TTY\", \"stdout\": true, \"tty\": true}")")
expect_match "Attach to a container with a terminal: its output on stdout" '"1": "[^"]*tty-tick\\r\\n' \
  "$(timeout 30 $PY "$SRCDIR/tests/cri-stream.py" channels "${url/http:/ws:}" "" tty-tick 2>&1)"
check "…which is then removed" rt RemoveContainer "{\"container_id\": \"$TTY\"}"
# One line longer than the shim's 16 KiB record: P records, then the F that ends it.
LONG_CMD='["sh", "-c", "printf %020000d 0; echo; sleep 30"]'
out=$(rt CreateContainer "{\"pod_sandbox_id\": \"$POD1\", \"config\": $(container_config long "$LONG_CMD")}")
LONG=$(jget container_id "$out")
rt StartContainer "{\"container_id\": \"$LONG\"}" >/dev/null
for _ in $(seq 50); do grep -q " F " "$TEST_TMP/logs/pod1/long/0.log" 2>/dev/null && break; sleep 0.1; done
expect_eq "a 20000-character line is logged as P then F records" "P:16384 F:3616" \
  "$(awk '{ printf("%s%s:%d", (NR > 1 ? " " : ""), $3, length($4)) }' "$TEST_TMP/logs/pod1/long/0.log" 2>&1)"
check "RemoveContainer of a running container" rt RemoveContainer "{\"container_id\": \"$LONG\"}"
expect_match "…it is gone" "^error: NOT_FOUND" "$(rt ContainerStatus "{\"container_id\": \"$LONG\"}")"
# Mount propagation: with HOST_TO_CONTAINER a mount made on the host later shows inside;
# with PRIVATE (the default) it does not.
mkdir -p "$TEST_TMP/shared"
mount --bind "$TEST_TMP/shared" "$TEST_TMP/shared" && mount --make-shared "$TEST_TMP/shared"
prop_container () { # NAME PROPAGATION: a running container with $TEST_TMP/shared at /mnt/h
  local out id
  out=$(rt CreateContainer "{\"pod_sandbox_id\": \"$POD1\", \"config\": {\"metadata\": {\"name\": \"$1\"},
    \"image\": {\"image\": \"$REG/busybox:latest\"}, \"command\": [\"sleep\", \"60\"],
    \"mounts\": [{\"container_path\": \"/mnt/h\", \"host_path\": \"$TEST_TMP/shared\", \"propagation\": \"$2\"}]}}")
  id=$(jget container_id "$out")
  rt StartContainer "{\"container_id\": \"$id\"}" >/dev/null
  echo "$id"
}
PROP=$(prop_container prop PROPAGATION_HOST_TO_CONTAINER)
PRIV=$(prop_container priv PROPAGATION_PRIVATE)
mkdir -p "$TEST_TMP/shared/sub" && mount -t tmpfs berth-prop-test "$TEST_TMP/shared/sub"
expect_match "PROPAGATION_HOST_TO_CONTAINER: a later host mount appears in the container" "berth-prop-test /mnt/h/sub" \
  "$(jget stdout "$(rt ExecSync "{\"container_id\": \"$PROP\", \"cmd\": [\"cat\", \"/proc/mounts\"]}")")"
expect_eq "PROPAGATION_PRIVATE: it does not" "" \
  "$(jget stdout "$(rt ExecSync "{\"container_id\": \"$PRIV\", \"cmd\": [\"grep\", \"berth-prop-test\", \"/proc/mounts\"]}")")"
rt RemoveContainer "{\"container_id\": \"$PROP\"}" >/dev/null
rt RemoveContainer "{\"container_id\": \"$PRIV\"}" >/dev/null
umount "$TEST_TMP/shared/sub" "$TEST_TMP/shared"
# A host device mapped in: /dev/null as /dev/xnull, writable.
out=$(rt CreateContainer "{\"pod_sandbox_id\": \"$POD1\", \"config\": {\"metadata\": {\"name\": \"dev\"},
  \"image\": {\"image\": \"$REG/busybox:latest\"}, \"command\": [\"sleep\", \"60\"],
  \"devices\": [{\"container_path\": \"/dev/xnull\", \"host_path\": \"/dev/null\", \"permissions\": \"rw\"}]}}")
DEV=$(jget container_id "$out")
rt StartContainer "{\"container_id\": \"$DEV\"}" >/dev/null
expect_eq "a device from the config is there and writable" "c ok" \
  "$(jget stdout "$(rt ExecSync "{\"container_id\": \"$DEV\", \"cmd\": [\"sh\", \"-c\", \"test -c /dev/xnull && echo hi >/dev/xnull && echo c ok\"]}")" | tr -d '\n')"
rt RemoveContainer "{\"container_id\": \"$DEV\"}" >/dev/null
expect_match "a device path that is no device: INVALID_ARGUMENT" "^error: INVALID_ARGUMENT.*not a device" \
  "$(rt CreateContainer "{\"pod_sandbox_id\": \"$POD1\", \"config\": {\"metadata\": {\"name\": \"baddev\"},
     \"image\": {\"image\": \"$REG/busybox:latest\"}, \"devices\": [{\"container_path\": \"/dev/x\", \"host_path\": \"/etc/hostname\"}]}}")"
# The kernel's OOM kill is the reason kubelet shows (containerd: "OOMKilled").
out=$(rt CreateContainer "{\"pod_sandbox_id\": \"$POD1\", \"config\": {\"metadata\": {\"name\": \"hog\"},
  \"image\": {\"image\": \"$REG/busybox:latest\"}, \"command\": [\"dd\", \"if=/dev/zero\", \"of=/dev/null\", \"bs=256M\", \"count=1\"],
  \"linux\": {\"resources\": {\"memory_limit_in_bytes\": 33554432}}}}")
HOG=$(jget container_id "$out")
rt StartContainer "{\"container_id\": \"$HOG\"}" >/dev/null
for _ in $(seq 100); do
  [ "$(jget state "$(rt ContainerStatus "{\"container_id\": \"$HOG\"}" | jget status)")" = CONTAINER_EXITED ] && break; sleep 0.2
done
hog_status=$(rt ContainerStatus "{\"container_id\": \"$HOG\"}" | jget status)
expect_eq "a container the kernel OOM-kills exits with reason OOMKilled, code 137" "OOMKilled 137" \
  "$(jget reason "$hog_status") $(jget exit_code "$hog_status")"
rt StopContainer "{\"container_id\": \"$HOG\", \"timeout\": 1}" >/dev/null
expect_eq "…and keeps it once stopped" OOMKilled "$(jget reason "$(rt ContainerStatus "{\"container_id\": \"$HOG\"}" | jget status)")"
rt RemoveContainer "{\"container_id\": \"$HOG\"}" >/dev/null
expect_eq "ListContainers by sandbox finds both" 2 \
  "$(rt ListContainers "{\"filter\": {\"pod_sandbox_id\": \"$POD1\"}}" | jget containers | $PY -c 'import json,sys; print(len(json.load(sys.stdin)))')"
check "UpdateContainerResources (memory limit)" rt UpdateContainerResources \
  "{\"container_id\": \"$TICK\", \"linux\": {\"memory_limit_in_bytes\": 67108864}}"
limit=$(cat "/sys/fs/cgroup/memory/k8s.io/$TICK/memory.limit_in_bytes" 2>/dev/null \
        || cat "/sys/fs/cgroup/unified/k8s.io/$TICK/memory.max" 2>/dev/null || cat "/sys/fs/cgroup/k8s.io/$TICK/memory.max")
expect_eq "…the container's cgroup has it" 67108864 "$limit"
expect_match "ListPodSandboxStats lists the running pod" "$POD1" "$(rt ListPodSandboxStats)"
ctr_ls=$(bctr -n k8s.io containers ls -q 2>&1)
if printf '%s\n' "$ctr_ls" | grep -qx "$POD1" && printf '%s\n' "$ctr_ls" | grep -qx "$WEB"; then
  ok "ctr -n k8s.io sees the pod and its containers as berth containers"
else
  not_ok "ctr -n k8s.io sees the pod and its containers as berth containers"; diag "$ctr_ls"
fi
expect_match "…and their running tasks" "$WEB[[:space:]]+[0-9]+[[:space:]]+RUNNING" "$(bctr -n k8s.io tasks ls 2>&1)"

# ---- a second pod ----
out=$(rt RunPodSandbox "{\"config\": $(pod_config pod2 0)}")
POD2=$(jget pod_sandbox_id "$out")
IP2=$(jget status.network.ip "$(rt PodSandboxStatus "{\"pod_sandbox_id\": \"$POD2\"}")")
expect_match "a second pod gets an IP of the subnet" "^$NET\.[0-9]+$" "$IP2"
if [ "$IP2" != "$IP1" ]; then ok "…a different one"; else not_ok "…a different one ($IP1 twice)"; fi
# (On pod2, which maps no ports: Debian's portmap 1.1.1 fails CHECK of mapped ports
# whenever ip6tables exists, looking for an IPv6 chain it never made.)
out=$(rt PodSandboxStatus "{\"pod_sandbox_id\": \"$POD2\", \"verbose\": true}")
expect_eq "a verbose status runs CNI CHECK: the network is as ADD left it" ok "$(jget cniCheck "$(jget info.info "$out")")"
nsenter --net="$STATE/cri/netns/$POD2" ip link del eth0
out=$(rt PodSandboxStatus "{\"pod_sandbox_id\": \"$POD2\", \"verbose\": true}")
expect_match "…and says what is wrong once the pod's eth0 is gone" "eth0" "$(jget cniCheck "$(jget info.info "$out")")"
expect_eq "ListPodSandbox by label finds one pod" 1 \
  "$(rt ListPodSandbox '{"filter": {"label_selector": {"app": "pod2"}}}' | jget items | $PY -c 'import json,sys; print(len(json.load(sys.stdin)))')"

# A network that fails to come up: nothing of the pod stays, not even its name.
printf '{"cniVersion": "1.0.0", "name": "broken", "plugins": [{"type": "nosuchplugin"}]}\n' >"$TEST_TMP/net.d/00-broken.conflist"
out=$(rt RunPodSandbox "{\"config\": $(pod_config pod3 0)}")
expect_match "RunPodSandbox on a network whose plugin is missing fails, naming it" "nosuchplugin" "$out"
expect_eq "…and leaves no network namespace behind" "$(ls "$STATE/cri/netns" | sort)" "$(printf '%s\n' "$POD1" "$POD2" | sort)"
rm "$TEST_TMP/net.d/00-broken.conflist"
out=$(rt RunPodSandbox "{\"config\": $(pod_config pod3 0)}")
POD3=$(jget pod_sandbox_id "$out")
expect_match "…nor its name: the same pod runs once the network is fixed" '^[0-9a-f]{64}$' "$POD3"
check "…and is removed" rt RemovePodSandbox "{\"pod_sandbox_id\": \"$POD3\"}"

# RuntimeClass: a pod whose handler is "crun" runs its containers with crun.
out=$(rt RunPodSandbox "{\"config\": $(pod_config podc 0), \"runtime_handler\": \"crun\"}")
PODC=$(jget pod_sandbox_id "$out")
expect_eq "a pod with runtime handler crun: its status says so" crun \
  "$(jget status.runtime_handler "$(rt PodSandboxStatus "{\"pod_sandbox_id\": \"$PODC\"}")")"
out=$(rt CreateContainer "{\"pod_sandbox_id\": \"$PODC\", \"config\": $(container_config c '["sleep", "60"]')}")
CC=$(jget container_id "$out")
rt StartContainer "{\"container_id\": \"$CC\"}" >/dev/null
expect_match "…its container runs under crun" "/crun$" \
  "$(cat "$STATE/io.containerd.runtime.v2.task/k8s.io/$CC/runtime-binary" 2>&1)"
expect_eq "…and answers ExecSync" podc \
  "$(jget stdout "$(rt ExecSync "{\"container_id\": \"$CC\", \"cmd\": [\"hostname\"]}")" | tr -d '\n')"
check "…and is removed with its pod" rt RemovePodSandbox "{\"pod_sandbox_id\": \"$PODC\"}"
expect_match "an unknown runtime handler: INVALID_ARGUMENT" "^error: INVALID_ARGUMENT.*kata" \
  "$(rt RunPodSandbox "{\"config\": $(pod_config podk 0), \"runtime_handler\": \"kata\"}")"

# ---- bad requests ----
expect_match "PodSandboxStatus of a missing sandbox: NOT_FOUND" "^error: NOT_FOUND" \
  "$(rt PodSandboxStatus '{"pod_sandbox_id": "0000"}')"
expect_match "CreateContainer in a missing sandbox: NOT_FOUND" "^error: NOT_FOUND" \
  "$(rt CreateContainer "{\"pod_sandbox_id\": \"0000\", \"config\": $(container_config x '["true"]')}")"
expect_match "StopPodSandbox of a missing sandbox: NOT_FOUND" "^error: NOT_FOUND" "$(rt StopPodSandbox '{"pod_sandbox_id": "0000"}')"
expect_match "CreateContainer of an image not pulled: NOT_FOUND" "^error: NOT_FOUND" \
  "$(rt CreateContainer "{\"pod_sandbox_id\": \"$POD2\", \"config\": {\"metadata\": {\"name\": \"y\"}, \"image\": {\"image\": \"nosuch:1\"}}}")"
expect_match "Exec in a missing container: NOT_FOUND" "^error: NOT_FOUND" \
  "$(rt Exec '{"container_id": "0000", "cmd": ["true"], "stdout": true}')"
expect_match "Exec with a terminal and stderr: INVALID_ARGUMENT naming them" "^error: INVALID_ARGUMENT.*tty and stderr" \
  "$(rt Exec "{\"container_id\": \"$WEB\", \"cmd\": [\"sh\"], \"stdout\": true, \"stderr\": true, \"tty\": true}")"
expect_match "Attach with stdin: INVALID_ARGUMENT naming it" "^error: INVALID_ARGUMENT.*stdin" \
  "$(rt Attach "{\"container_id\": \"$WEB\", \"stdin\": true, \"stdout\": true}")"
expect_match "PortForward of a missing sandbox: NOT_FOUND" "^error: NOT_FOUND" \
  "$(rt PortForward '{"pod_sandbox_id": "0000", "port": [80]}')"

# ---- stop and remove leave nothing behind ----
check "StopContainer (SIGTERM, 2 s grace)" rt StopContainer "{\"container_id\": \"$WEB\", \"timeout\": 2}"
out=$(rt ContainerStatus "{\"container_id\": \"$WEB\"}")
expect_eq "…EXITED" CONTAINER_EXITED "$(jget status.state "$out")"
expect_eq "…its shell ended by SIGTERM, with its own exit code" 7 "$(jget status.exit_code "$out")"
expect_match "…its last words are in the log" "stdout F bye" "$(cat "$LOG" 2>&1)"
check "StopPodSandbox" rt StopPodSandbox "{\"pod_sandbox_id\": \"$POD1\"}"
expect_eq "…NOTREADY" SANDBOX_NOTREADY "$(jget status.state "$(rt PodSandboxStatus "{\"pod_sandbox_id\": \"$POD1\"}")")"
expect_eq "…its containers are exited" CONTAINER_EXITED "$(jget status.state "$(rt ContainerStatus "{\"container_id\": \"$TICK\"}")")"
check "…no network namespace file" test ! -e "$STATE/cri/netns/$POD1"
check "StopPodSandbox again is fine" rt StopPodSandbox "{\"pod_sandbox_id\": \"$POD1\"}"
check "RemovePodSandbox" rt RemovePodSandbox "{\"pod_sandbox_id\": \"$POD1\"}"
check "RemovePodSandbox again is fine" rt RemovePodSandbox "{\"pod_sandbox_id\": \"$POD1\"}"
expect_eq "its containers are gone" 0 \
  "$(rt ListContainers "{\"filter\": {\"pod_sandbox_id\": \"$POD1\"}}" | jget containers | $PY -c 'import json,sys; print(len(json.load(sys.stdin)))')"
check "RemovePodSandbox of the second pod" rt RemovePodSandbox "{\"pod_sandbox_id\": \"$POD2\"}"
expect_eq "no veth is left on the bridge" "" "$(ip -o link show master "$BR" 2>&1)"
expect_eq "no mount of the pods is left" "" "$(grep -E "$POD1|$POD2|$WEB|$TICK" /proc/self/mounts)"
expect_eq "no network namespace is left" "" "$(ls "$STATE/cri/netns" 2>&1)"
leftover=$(find /sys/fs/cgroup -maxdepth 4 -type d \( -name "$POD1" -o -name "$POD2" -o -name "$WEB" -o -name "$TICK" \) 2>/dev/null)
expect_eq "no cgroup is left" "" "$leftover"
expect_eq "no portmap rule is left" "" "$(iptables-save -t nat 2>/dev/null | grep -F "berth-cri-test-$BR")"
expect_eq "no shim or container process of theirs is left" "" "$(pgrep -f ": $MARK; done" ; pgrep -f "httpd -f -p 8080 -h $WWW")"
check "RemoveImage" img RemoveImage "{\"image\": {\"image\": \"$IMAGE_ID\"}}"
expect_eq "…the image is gone" None "$(jget image "$(img ImageStatus "{\"image\": {\"image\": \"$REG/busybox:latest\"}}")")"
tests_done
