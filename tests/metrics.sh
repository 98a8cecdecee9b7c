#!/bin/bash
# The Prometheus endpoint of a real berthd with three running containers: the page
# passes promtool, every container has its cgroup series, gRPC calls are counted, and
# a bad [metrics] address stops berthd with the key named.
source "$(dirname "$0")/lib.sh"
require_plugins local walking overlayfs oci
tap_plan 26
"$SRCDIR/tests/install-deps.sh" >/dev/null 2>&1 # promtool; binds hugetlb to v1 where crun needs it

# The value of the series whose name and labels are exactly $2 in page $1; 0 when absent.
series () { printf '%s\n' "$1" | awk -v s="$2" 'index($0, s " ") == 1 {print $2; found=1} END {if (!found) print 0}'; }

PORT=$(free_port)
printf '[metrics]\naddress = 127.0.0.1:%s\n' "$PORT" >"$TEST_TMP/metrics.conf"
berthd_start metrics -- --config "$TEST_TMP/metrics.conf" || true
URL=http://127.0.0.1:$PORT/v1/metrics
IMAGE=docker.io/library/busybox:latest
make_busybox_image "$TEST_TMP/busybox.tar"
bctr images import "$TEST_TMP/busybox.tar" >/dev/null

IDS=(m-one m-two m-three)
bctr run -d --memory-limit 33554432 $IMAGE m-one sleep 300 >/dev/null
bctr run -d $IMAGE m-two sleep 300 >/dev/null
bctr run -d --runc-binary crun $IMAGE m-three sleep 300 >/dev/null
expect_eq "three detached containers run" 3 "$(bctr tasks ls | grep -c RUNNING)"

page=$(http_get "$URL"); rc=$?
expect_eq "GET /v1/metrics answers 200" 0 "$rc"
if command -v promtool >/dev/null; then
  check "promtool check metrics accepts the page" promtool check metrics <<<"$page"
else
  not_ok "promtool check metrics accepts the page (promtool missing: tests/install-deps.sh installs Debian's prometheus)"
fi
for id in "${IDS[@]}"; do
  labels="{namespace=\"default\",container_id=\"$id\"}"
  expect_match "$id has a memory usage series" "^berth_container_memory_usage_bytes$labels [1-9][0-9]*$" "$page"
  expect_match "$id has a CPU series" "^berth_container_cpu_usage_seconds_total$labels [0-9]+\\.[0-9]{9}$" "$page"
done
expect_match "…and a pids series" '^berth_container_pids_current\{namespace="default",container_id="m-two"\} 1$' "$page"
expect_eq "the memory limit ctr run --memory-limit set is exported" 33554432 \
  "$(series "$page" 'berth_container_memory_limit_bytes{namespace="default",container_id="m-one"}')"
expect_eq "…and no limit series for a container without one" "" \
  "$(printf '%s\n' "$page" | grep '^berth_container_memory_limit_bytes{namespace="default",container_id="m-two"}')"
expect_match "io bytes come by op" '^berth_container_io_bytes_total\{namespace="default",container_id="m-one",op="write"\} [0-9]+$' "$page"
expect_eq "the overlayfs plugin's status is ok" 1 \
  "$(series "$page" 'berth_plugin_status{type="io.containerd.snapshotter.v1",id="overlayfs",status="ok"}')"
blobs=$(series "$page" berth_content_blobs) snapshots=$(series "$page" 'berth_snapshots{snapshotter="overlayfs"}')
if [ "$blobs" -gt 0 ] && [ "$snapshots" -gt 0 ]; then ok "content and snapshot gauges count the image ($blobs blobs, $snapshots snapshots)"
else not_ok "content and snapshot gauges count the image ($blobs blobs, $snapshots snapshots)"; fi
expect_eq "berth_build_info names the version" 1 \
  "$(series "$page" "berth_build_info{version=\"$("$BUILDDIR/core/berthd" --version | awk '{print $2}')\"}")"

VERSION_SERIES='berth_grpc_requests_total{method="/containerd.services.version.v1.Version/Version",code="OK"}'
before=$(series "$page" "$VERSION_SERIES")
bctr version >/dev/null
after=$(series "$(http_get "$URL")" "$VERSION_SERIES")
if [ "$after" -gt "$before" ] 2>/dev/null; then ok "ctr version raises the Version call counter ($before → $after)"
else not_ok "ctr version raises the Version call counter ($before → $after)"; fi
expect_match "…and its latency histogram counts it" \
  '^berth_grpc_request_duration_seconds_bucket\{method="/containerd.services.version.v1.Version/Version",le="\+Inf"\} [1-9]' \
  "$(http_get "$URL")"

headers=$(curl -s -D - -o /dev/null "http://127.0.0.1:$PORT/metrics")
expect_match "/metrics answers too, as exposition format 0.0.4" "^Content-Type: text/plain; version=0.0.4" "$headers"
expect_match "other paths are 404" "^HTTP/1.1 404" "$(curl -s -D - -o /dev/null "http://127.0.0.1:$PORT/other")"

# Clients that give up mid-scrape: their parked messages are dropped, not answered into
# a closed connection, and the endpoint keeps working.
quitters=()
for i in $(seq 30); do curl -s --max-time 0.005 "$URL" >/dev/null 2>&1 & quitters+=($!); done
wait "${quitters[@]}"
check "after 30 clients hung up mid-scrape berthd still serves metrics" http_get "$URL"

# An address already taken fails startup instead of running without metrics.
out=$("$BUILDDIR/core/berthd" --config "$TEST_TMP/metrics.conf" --root "$TEST_TMP/busy/root" --state "$TEST_TMP/busy/state" \
      --address "$TEST_TMP/busy/berthd.sock" --plugin-dir /nonexistent 2>&1); rc=$?
expect_eq "a second berthd on the same metrics port exits 1" 1 "$rc"
expect_match "…saying which address it could not listen on" "metrics: listening on 127.0.0.1:$PORT" "$out"

printf '[berthd]\n\n[metrics]\naddress=nonsense\n' >"$TEST_TMP/bad.conf"
out=$("$BUILDDIR/core/berthd" --config "$TEST_TMP/bad.conf" --root "$TEST_TMP/bad/root" --state "$TEST_TMP/bad/state" \
      --address "$TEST_TMP/bad/berthd.sock" 2>&1); rc=$?
if [ "$rc" -ne 0 ]; then ok "[metrics] address=nonsense: berthd exits non-zero ($rc)"; else not_ok "[metrics] address=nonsense: berthd exits non-zero"; fi
expect_match "…naming the file, line and key" "$TEST_TMP/bad.conf:4: \\[metrics\\] address = \"nonsense\": want an IP address and a port" "$out"

for id in "${IDS[@]}"; do bctr tasks kill -s KILL "$id" >/dev/null 2>&1; done
sleep 0.5
for id in "${IDS[@]}"; do bctr tasks rm "$id" >/dev/null 2>&1; bctr containers rm "$id" >/dev/null 2>&1; done
expect_none "removed containers leave no container series" "grep '^berth_container_'" http_get "$URL"
tests_done
