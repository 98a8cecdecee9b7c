#!/bin/bash
# Clients that wait must not hold berthd's threads, and clients that hoard connections
# must not take its fds (ARCHITECTURE.md, "Concurrency model"): 40 `ctr events`
# subscribers, 40 long CRI ExecSync calls, 1000 idle Content.Write streams on one
# connection, 8 Content.Read clients that never read, a client flood past berthd's fd limit, 700 idle connections to the
# metrics port, and a grpc-timeout too large for a timer. berthd answers throughout.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3 # Debian's, with grpcio and grpc_tools
tap_plan 23

# Each open ingest holds a file: room for 1000 of them.
ulimit -Sn 8192 2>/dev/null
berthd_start threads || true
threads () { $PY "$SRCDIR/tests/threads.py" "$@"; }
# val KEY OUTPUT: the value of a "key value" line.
val () { sed -n "s/^$1 //p" <<<"$2" | head -1; }

# ---- 40 event subscribers ----
SUBS=()
for i in $(seq 40); do
  ctr --address "$BERTH_SOCK" events >/dev/null 2>&1 & # not bctr: $! must be ctr's pid
  SUBS+=($!)
done
sleep 3
check "with 40 ctr events subscribed, ctr version answers" timeout 30 ctr --address "$BERTH_SOCK" version
check "…and a namespace can be created" timeout 30 ctr --address "$BERTH_SOCK" namespaces create threads-ns
kill "${SUBS[@]}" 2>/dev/null
wait "${SUBS[@]}" 2>/dev/null

# ---- a grpc-timeout past what a timer holds ----
out=$(threads timeout "$BERTH_SOCK")
expect_eq "a 4294968 s grpc-timeout is no deadline (not 704 ms)" open "$(val subscription "$out")"

# ---- 1000 idle Content.Write streams on one connection ----
out=$(threads streams "$BERTH_SOCK" "$BERTHD_PID" 1000 2>&1)
expect_eq "1000 Content.Write streams each got an answer" 1000 "$(val answered "$out")"
t=$(val threads "$out")
check "…while they stay open berthd has at most 16 threads (it has ${t:-?})" test "${t:-999}" -le 16
expect_eq "…and answers Version meanwhile" ok "$(val version "$out")"
check "…and after they are gone" timeout 30 ctr --address "$BERTH_SOCK" version

# ---- 8 clients that never read a 64 MB blob ----
# Content.Read is pulled as the client reads: a stalled reader holds no thread, and
# little memory (what is queued for it).
head -c $((64 << 20)) /dev/urandom >"$TEST_TMP/blob"
BLOB=sha256:$(sha256sum "$TEST_TMP/blob" | cut -d' ' -f1)
bctr content ingest --expected-digest "$BLOB" threads-blob <"$TEST_TMP/blob"
rm -f "$TEST_TMP/blob"
printf 'small blob\n' >"$TEST_TMP/small"
SMALL=sha256:$(sha256sum "$TEST_TMP/small" | cut -d' ' -f1)
bctr content ingest --expected-digest "$SMALL" threads-small <"$TEST_TMP/small"
rss () { sed -n 's/^VmRSS:\s*\([0-9]*\).*/\1/p' "/proc/$BERTHD_PID/status"; }
rss_before=$(rss)
$PY "$SRCDIR/tests/threads.py" stalled "$BERTH_SOCK" "$BLOB" 8 >"$TEST_TMP/stalled.out" 2>&1 &
STALLED=$!
for _ in $(seq 300); do grep -q ready "$TEST_TMP/stalled.out" && break; sleep 0.1; done
sleep 3
check "with 8 stalled readers of a 64 MB blob, ctr content ls answers" \
  timeout 30 ctr --address "$BERTH_SOCK" content ls -q
expect_eq "…and a 9th reader gets a small blob" "small blob" "$(timeout 30 ctr --address "$BERTH_SOCK" content get "$SMALL")"
check "…and ctr version answers" timeout 30 ctr --address "$BERTH_SOCK" version
t=$(sed -n 's/^Threads:\s*//p' "/proc/$BERTHD_PID/status")
check "…while berthd has at most 16 threads (it has ${t:-?})" test "${t:-999}" -le 16
grown=$(( ($(rss) - rss_before) / 1024 ))
check "…and grew by at most 32 MB ($grown MB)" test "$grown" -le 32
kill "$STALLED" 2>/dev/null
wait "$STALLED" 2>/dev/null
check "…and reads the whole blob to a client that reads" \
  test "$(ctr --address "$BERTH_SOCK" content get "$BLOB" | sha256sum | cut -d' ' -f1)" = "${BLOB#sha256:}"

# ---- 700 idle TCP connections to the metrics port ----
berthd_stop
PORT=$(free_port)
printf '[metrics]\naddress = 127.0.0.1:%s\n' "$PORT" >"$TEST_TMP/metrics.conf"
# The limit makes 700 connections more than berthd could hold.
OLD_NOFILE=$(ulimit -Sn)
ulimit -Sn 512
berthd_start metrics -- --config "$TEST_TMP/metrics.conf" || true
ulimit -Sn "$OLD_NOFILE"
wait_port "$PORT"
out=$(threads tcp "$PORT" "$BERTH_SOCK" 700 2>&1)
expect_eq "700 idle connections to the metrics port are taken" 700 "$(val held "$out")"
expect_eq "…and berthd still answers gRPC meanwhile" ok "$(val version "$out")"
check "…and serves metrics after" http_get "http://127.0.0.1:$PORT/v1/metrics"

# ---- out of fds ----
berthd_stop
ulimit -Sn 64
berthd_start fds || true
ulimit -Sn "$OLD_NOFILE"
check "berthd with 64 fds answers" timeout 30 ctr --address "$BERTH_SOCK" version
out=$(threads fds "$BERTH_SOCK" "$BERTHD_PID" 200 2>&1)
ms=$(val cpu_ms "$out")
check "with 200 clients and no fd left, berthd does not spin (${ms:-?} ms of CPU in 4 s)" test "${ms:-99999}" -lt 250
check "…and answers again once they are gone" timeout 30 ctr --address "$BERTH_SOCK" version
check "…and is still running" kill -0 "$BERTHD_PID"

# ---- 40 long ExecSync while CRI Version answers ----
berthd_stop
BERTH_DATADIR=$SRCDIR/data berthd_start cri || true
mkdir -p "$TEST_TMP/stubs"
$PY -m grpc_tools.protoc -I"$SRCDIR/core/services/cri" --python_out="$TEST_TMP/stubs" --grpc_python_out="$TEST_TMP/stubs" \
  "$SRCDIR/core/services/cri/api.proto"
make_busybox_image "$TEST_TMP/busybox.tar" docker.io/library/threads-busybox:1
bctr -n k8s.io images import "$TEST_TMP/busybox.tar" >/dev/null
cri () { $PY "$SRCDIR/tests/cri-client.py" "$TEST_TMP/stubs" "$BERTH_SOCK" RuntimeService "$@"; }
jid () { $PY -c 'import json, sys; print(json.load(sys.stdin).get(sys.argv[1], ""))' "$1" 2>/dev/null; }
MARK=${TEST_TMP##*/}
POD_CONFIG='{"metadata": {"name": "threads", "uid": "uid-'$MARK'", "namespace": "test", "attempt": 0},
  "log_directory": "'$TEST_TMP'/logs", "linux": {"security_context": {"namespace_options": {"network": "NODE"}}}}'
POD=$(cri RunPodSandbox "{\"config\": $POD_CONFIG}" | jid pod_sandbox_id)
CTR=$(cri CreateContainer "{\"pod_sandbox_id\": \"$POD\", \"sandbox_config\": $POD_CONFIG, \"config\":
  {\"metadata\": {\"name\": \"sleeper\"}, \"image\": {\"image\": \"docker.io/library/threads-busybox:1\"},
   \"command\": [\"sh\", \"-c\", \"echo $MARK; sleep 600\"], \"log_path\": \"sleeper.log\"}}" | jid container_id)
cri StartContainer "{\"container_id\": \"$CTR\"}" >/dev/null
out=$(threads execsync "$TEST_TMP/stubs" "$BERTH_SOCK" "${CTR:-none}" 40 2>&1)
expect_eq "with 40 ExecSync sleep 20 running, CRI Version answers (within 10 s)" ok "$(val version "$out")"
check "…before they end ($(val execs_running_after_version "$out") still running)" \
  test "$(val execs_running_after_version "$out")" -gt 0
expect_eq "…and all 40 end with exit code 0" 40 "$(val exec_ok "$out")"
[ -n "$POD" ] && cri StopPodSandbox "{\"pod_sandbox_id\": \"$POD\"}" >/dev/null
[ -n "$POD" ] && cri RemovePodSandbox "{\"pod_sandbox_id\": \"$POD\"}" >/dev/null
berthd_stop
tests_done
