#!/bin/bash
# Pull and push against real registries: Debian's docker-registry on loopback ports
# (plain http, htpasswd Basic auth, TLS with a CA made here), fed by skopeo from
# archives built here, and a small fake registry (tests/fake-registry.py) for what a
# real one will not do on demand: Bearer tokens, 503s, dropped connections, lying
# digests. ctr pulls client-side through berthd's Content/Images/Snapshots/Diff API;
# berth pull / berth push go through berthd's Transfer service, server-side.
source "$(dirname "$0")/lib.sh"
tap_plan 76
"$SRCDIR/tests/install-deps.sh" >/dev/null 2>&1 # docker-registry, skopeo, htpasswd; hugetlb for crun

export BERTH_DATADIR=$SRCDIR/data
grpc () { "$SRCDIR/tests/grpc-call.py" "$BERTH_SOCK" "$@"; }

# ---- images, registries and berthd's config ----
make_busybox_image "$TEST_TMP/busybox.tar"
mkdir -p "$TEST_TMP/extra/etc" "$TEST_TMP/big"
echo hello-from-layer-2 >"$TEST_TMP/extra/etc/hello"
python3 "$SRCDIR/tests/make-image.py" "$TEST_TMP/multi.tar" --busybox --layer "$TEST_TMP/extra" --name multi:v1 >/dev/null
echo pushed-only >"$TEST_TMP/extra/etc/hello"
python3 "$SRCDIR/tests/make-image.py" "$TEST_TMP/pushme.tar" --busybox --layer "$TEST_TMP/extra" --name docker.io/library/pushme:latest >/dev/null
# A layer that does not compress: large enough to be cut mid-transfer.
head -c 400000 /dev/urandom >"$TEST_TMP/big/noise"
python3 "$SRCDIR/tests/make-image.py" "$TEST_TMP/big.tar" --busybox --layer "$TEST_TMP/big" --name big:v1 >/dev/null

registry_start plain accesslog || true
PLAIN=$REG
htpasswd -Bbn tester s3cret >"$TEST_TMP/htpasswd"
registry_start auth htpasswd "$TEST_TMP/htpasswd" || true
AUTH=$REG
AUTH_PORT=${AUTH#*:}
mkdir -p "$TEST_TMP/tls"
( cd "$TEST_TMP/tls" &&
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=berth-test-ca &&
  openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1 &&
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >ext &&
  openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile ext ) >/dev/null 2>&1
registry_start tls tls "$TEST_TMP/tls/server.crt" "$TEST_TMP/tls/server.key" || true
TLS=$REG
TLS_PORT=${TLS#*:}

check "skopeo copies the busybox archive into the plain registry" registry_put "$TEST_TMP/busybox.tar" "$PLAIN/busybox:latest"
check "…and a two-layer image" registry_put "$TEST_TMP/multi.tar" "$PLAIN/multi:v1"
check "…and busybox into the registry with Basic auth" registry_put "$TEST_TMP/busybox.tar" "$AUTH/busybox:latest" --dest-creds tester:s3cret
check "…and into the TLS registry" registry_put "$TEST_TMP/busybox.tar" "$TLS/busybox:latest"

printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$AUTH" "$(printf tester:s3cret | base64)" >"$TEST_TMP/auth.json"
cat >"$TEST_TMP/berthd.conf" <<CONF
[berthd]
registry-auth-file=$TEST_TMP/auth.json
max-concurrent-downloads=2
push-chunk-size=100000

[registry."$PLAIN"]
plain-http=true

[registry."$TLS"]
ca-file=$TEST_TMP/tls/ca.crt
CONF
berthd_start reg -- --config "$TEST_TMP/berthd.conf" || true
BERTH="$BUILDDIR/core/cli/berth --address $BERTH_SOCK"
b () { timeout 120 $BERTH "$@"; }

# ---- ctr pulls client-side through berthd's API ----
check "ctr images pull --plain-http from the registry" timeout 120 ctr --address "$BERTH_SOCK" images pull --plain-http "$PLAIN/busybox:latest"
expect_match "…the image is listed" "^$PLAIN/busybox:latest " "$(bctr images ls)"
expect_match "…its layer unpacked into a committed snapshot" "Committed" "$(bctr snapshots ls)"
expect_match "…its blobs labelled for GC" "containerd.io/gc.ref.content.l.0=sha256:" "$(bctr content ls)"
expect_eq "ctr run --rm of the pulled image prints hi" hi "$(timeout 60 ctr --address "$BERTH_SOCK" run --rm "$PLAIN/busybox:latest" ctr-pulled echo hi 2>&1)"

# ---- berth pull, plain http (from berthd.conf) ----
out=$(b pull "$PLAIN/multi:v1" 2>"$TEST_TMP/pull.err")
expect_eq "berth pull prints the image it made" "$PLAIN/multi:v1" "$out"
expect_match "…reporting each layer downloaded (plain lines: not a TTY)" "layer +[0-9a-f]{12} done" "$(cat "$TEST_TMP/pull.err")"
expect_match "…and unpacked server-side" "layer +[0-9a-f]{12} unpacked" "$(cat "$TEST_TMP/pull.err")"
expect_match "berth image ls lists it" "^$PLAIN/multi:v1 " "$(b image ls)"
expect_eq "berth run --rm of the pulled image sees its second layer" hello-from-layer-2 "$(b run --rm "$PLAIN/multi:v1" cat /etc/hello 2>&1)"
expect_eq "berth run --rm IMAGE echo hi" hi "$(b run --rm "$PLAIN/multi:v1" echo hi 2>&1)"
expect_match "the config holds the top snapshot for GC, the layers their diff IDs" \
  "containerd.io/gc.ref.snapshot.overlayfs=sha256:.*|containerd.io/uncompressed=sha256:" "$(bctr content ls)"
expect_match "the blobs remember where they came from (for cross-repository mounts)" \
  "containerd.io/distribution.source.127.0.0.1=multi" "$(bctr content ls)"
expect_none "no lease is left behind" '' bctr leases ls -q
expect_none "no ingest is left behind" "tail -n +2" bctr content active
expect_eq "a reference without a tag means :latest" "$PLAIN/busybox:latest" "$(b pull -q "$PLAIN/busybox" 2>&1)"
digest=$(bctr images ls | awk -v n="$PLAIN/busybox:latest" '$1 == n {print $3}')
expect_eq "a pull by digest names the image by it" "$PLAIN/busybox@$digest" "$(b pull -q "$PLAIN/busybox@$digest" 2>&1)"
out=$(b pull -q "$PLAIN/busybox:latest" 2>&1)
expect_eq "pulling again is quiet with -q and finds the blobs there" "$PLAIN/busybox:latest" "$out"
check "berth gc keeps the pulled images whole" b gc
expect_eq "…they still run" hi "$(b run --rm "$PLAIN/multi:v1" echo hi 2>&1)"

# ---- berth push ----
check "berth image import of an image the registry has never seen" b image import -q "$TEST_TMP/pushme.tar"
out=$(b push pushme "$PLAIN/newrepo:v1" 2>"$TEST_TMP/push.err")
expect_match "berth push prints the destination and digest" "^$PLAIN/newrepo:v1 sha256:[0-9a-f]{64}$" "$out"
pushed=${out#* }
expect_match "…uploading the layer the registry lacked" "layer +[0-9a-f]{12} done" "$(cat "$TEST_TMP/push.err")"
expect_match "…and the busybox layer it has in another repository, mounted" "layer +[0-9a-f]{12} mounted" "$(cat "$TEST_TMP/push.err")"
inspect=$(skopeo inspect --tls-verify=false "docker://$PLAIN/newrepo:v1" 2>&1)
expect_match "skopeo inspect sees the pushed image" "\"Digest\": \"$pushed\"" "$inspect"
expect_match "…as two layers" '"Layers":\["sha256:[0-9a-f]{64}","sha256:[0-9a-f]{64}"\]' "$(echo "$inspect" | tr -d '\n ')"
out=$(b push pushme "$PLAIN/newrepo:v1" 2>&1 >/dev/null)
expect_match "pushing again finds every blob there" "^config .* exists.*layer .* exists.*layer .* exists" "$(echo $out)"
expect_eq "the pushed image pulls back into another namespace" "$PLAIN/newrepo:v1" "$(b -n other pull -q "$PLAIN/newrepo:v1" 2>&1)"
expect_eq "…and runs there" pushed-only "$(b -n other run --rm "$PLAIN/newrepo:v1" cat /etc/hello 2>&1)"

# ---- Basic auth (htpasswd), plain http by flag ----
expect_eq "berth pull --plain-http with credentials from the registry-auth-file" "$AUTH/busybox:latest" \
  "$(b pull -q --plain-http "$AUTH/busybox:latest" 2>&1)"
out=$(b pull -q --plain-http --user tester:wrong "$AUTH/busybox:latest" 2>&1); rc=$?
expect_match "wrong --user credentials: a clear authentication error" "refused the credentials of user tester" "$out"
expect_eq "…exit 125" 125 "$rc"
expect_match "…with gRPC status UNAUTHENTICATED" "^UNAUTHENTICATED: " \
  "$(grpc /berth.services.transfer.v1.Transfer/Pull 1="$AUTH/busybox:latest" "5={" 1=tester 2=wrong 3:i=1 "}")"
out=$(b pull -q --plain-http "localhost:$AUTH_PORT/busybox:latest" 2>&1)
expect_match "no credentials at all: the error says how to give them" "needs credentials \(give --user" "$out"
check "berth push with --user to the auth registry" b push -q --plain-http --user tester:s3cret pushme "$AUTH/pushed:v2"
check "…skopeo sees it" skopeo inspect --tls-verify=false --creds tester:s3cret "docker://$AUTH/pushed:v2"

# ---- TLS with a private CA ----
expect_eq "berth pull over https trusting the registry's ca-file" "$TLS/busybox:latest" "$(b pull -q "$TLS/busybox:latest" 2>&1)"
out=$(b pull -q "localhost:$TLS_PORT/busybox:latest" 2>&1); rc=$?
expect_match "the same registry under a name without a ca-file: refused, naming the fix" "cannot reach registry localhost:$TLS_PORT: .*ca-file" "$out"
expect_eq "…exit 125" 125 "$rc"
expect_eq "…--skip-verify takes it anyway" "localhost:$TLS_PORT/busybox:latest" "$(b pull -q --skip-verify "localhost:$TLS_PORT/busybox:latest" 2>&1)"
check "berth push over https" b push -q pushme "$TLS/pushed:v3"
check "…skopeo sees it" skopeo inspect --tls-verify=false "docker://$TLS/pushed:v3"
# HTTP and TLS happen in berthd's helper processes (berthd --http-request), never in berthd.
expect_none "after pulls and pushes over http and https berthd maps no libsoup, GnuTLS or Kerberos" \
  "grep -E 'libsoup|libgnutls|libkrb5|giognutls'" cat "/proc/$BERTHD_PID/maps"

# ---- what goes wrong ----
out=$(b pull -q "$PLAIN/nosuch:latest" 2>&1); rc=$?
expect_match "an unknown repository: NOT_FOUND naming the reference" "$PLAIN/nosuch:latest: not found" "$out"
expect_eq "…exit 1" 1 "$rc"
expect_match "…gRPC status NOT_FOUND" "^NOT_FOUND: $PLAIN/busybox:nosuchtag: not found" \
  "$(grpc /berth.services.transfer.v1.Transfer/Pull 1="$PLAIN/busybox:nosuchtag")"
out=$(b pull -q "Busy/Box" 2>&1); rc=$?
expect_match "bad reference syntax is refused, saying why" "repository names must be lowercase" "$out"
expect_eq "…exit 125" 125 "$rc"
expect_match "…gRPC status INVALID_ARGUMENT" "^INVALID_ARGUMENT: reference \"busybox:no tag\"" \
  "$(grpc /berth.services.transfer.v1.Transfer/Pull "1=busybox:no tag")"
expect_match "a bad digest in a reference too" "^INVALID_ARGUMENT: " "$(grpc /berth.services.transfer.v1.Transfer/Pull "1=$PLAIN/busybox@sha256:abc")"
out=$(b push nosuchimage "$PLAIN/x:1" 2>&1); rc=$?
expect_eq "pushing an image that does not exist: exit 1" 1 "$rc"

# ---- the fake registry: lying digests, Bearer tokens, 503s, dropped connections ----
fake_start () {
  local portfile=$TEST_TMP/fake-$1.port; shift
  python3 "$SRCDIR/tests/fake-registry.py" "$@" "$portfile" &
  BACKGROUND_PIDS+=("$!")
  for _ in $(seq 100); do [ -s "$portfile" ] && break; sleep 0.1; done
  FAKE=127.0.0.1:$(cat "$portfile")
  FAKE_LOG=$portfile.log
}
fake_start corrupt "$TEST_TMP/big.tar" --corrupt-layers --repo corrupt
out=$(b pull -q --plain-http "$FAKE/corrupt:latest" 2>&1); rc=$?
expect_match "a registry serving a blob whose digest lies: rejected" "does not match its digest" "$out"
expect_eq "…exit 125" 125 "$rc"
expect_none "…no image made" "grep corrupt" b image ls -q
big_layer=$(python3 -c 'import json,sys,tarfile; t=tarfile.open(sys.argv[1]); i=json.load(t.extractfile("index.json")); m=json.load(t.extractfile("blobs/sha256/"+i["manifests"][0]["digest"][7:])); print(m["layers"][-1]["digest"])' "$TEST_TMP/big.tar")
expect_none "…the bad blob is not in the content store" "grep $big_layer" bctr content ls -q
expect_none "…nor left as an ingest" "tail -n +2" bctr content active

fake_start flaky "$TEST_TMP/big.tar" --repo big --bearer tok:en --flaky 2 --drop-after 100000
out=$(b pull --plain-http --user tok:en "$FAKE/big:latest" 2>"$TEST_TMP/flaky.err")
expect_eq "Bearer token auth, two 503s and a connection cut mid-layer: the pull still succeeds" "$FAKE/big:latest" "$out"
expect_match "…the cut layer resumed with a Range request" "GET /v2/big/blobs/$big_layer bytes=100000-" "$(cat "$FAKE_LOG")"
expect_match "…the 503s were retried" "retrying|done" "$(cat "$TEST_TMP/flaky.err")"
expect_eq "…and the image runs" hi "$(b run --rm "$FAKE/big:latest" echo hi 2>&1)"
out=$(b pull -q --plain-http --user tok:nope "$FAKE/big:latest" 2>&1)
expect_match "a token service refusing the credentials: a clear authentication error" "token service refused the credentials" "$out"

# ---- chunked pushes: PATCH chunks above push-chunk-size, monolithic when refused ----
noise_md5=$(md5sum <"$TEST_TMP/big/noise" | cut -d' ' -f1)
check "berth image import of the image with a 400 kB layer" b -n chunks image import -q "$TEST_TMP/big.tar"
out=$(b -n chunks push big:v1 "$PLAIN/chunked:v1" 2>"$TEST_TMP/chunked.err")
expect_match "berth push of a layer over push-chunk-size" "^$PLAIN/chunked:v1 sha256:[0-9a-f]{64}$" "$out"
pushed=${out#* }
patches=$(grep -c '"PATCH /v2/chunked/blobs/uploads/[^ ]* HTTP/1.1" 202 ' "$TEST_TMP/plain/registry.log")
want=$(python3 -c 'import json,sys,tarfile; t=tarfile.open(sys.argv[1]); i=json.load(t.extractfile("index.json")); m=json.load(t.extractfile("blobs/sha256/"+i["manifests"][0]["digest"][7:])); print(sum(-(-b["size"] // 100000) for b in m["layers"] + [m["config"]] if b["size"] > 100000))' "$TEST_TMP/big.tar")
expect_eq "…docker-registry took its blobs over 100000 bytes in PATCH requests of 100000 bytes ($want)" "$want" "$patches"
expect_match "…skopeo inspect sees it" "\"Digest\": \"$pushed\"" "$(skopeo inspect --tls-verify=false "docker://$PLAIN/chunked:v1" 2>&1)"
check "…skopeo copies it back out" skopeo copy --quiet --src-tls-verify=false "docker://$PLAIN/chunked:v1" "oci:$TEST_TMP/chunked-oci:v1"
big_layer_file=$TEST_TMP/chunked-oci/blobs/sha256/${big_layer#sha256:}
expect_eq "…with the layer's bytes intact" "${big_layer#sha256:}" "$(sha256sum <"$big_layer_file" | cut -d' ' -f1)"
expect_eq "berth pull of it into a fresh namespace, and its file is the one pushed" "$noise_md5" \
  "$(b -n chunks-back pull -q "$PLAIN/chunked:v1" >/dev/null 2>&1 && b -n chunks-back run --rm "$PLAIN/chunked:v1" md5sum /noise 2>&1 | cut -d' ' -f1)"

fake_start refuse "$TEST_TMP/busybox.tar" --repo chunky --refuse-patch
out=$(b -n chunks push --plain-http big:v1 "$FAKE/chunky:v1" 2>&1); rc=$?
expect_eq "a registry refusing PATCH: the push still succeeds" 0 "$rc"
expect_match "…its first PATCH was answered 405" "^PATCH /v2/chunky/blobs/uploads/[0-9a-f]+ 0-99999 405$" "$(cat "$FAKE_LOG")"
expect_eq "…and the layer went up in one PUT (a fresh session), nothing chunked after that" \
  "PATCH 405 POST 202 PUT 201" "$(grep -A2 '^PATCH' "$FAKE_LOG" | awk '{print $1, $NF}' | xargs)"
expect_eq "…the image pulls back from there and its file is intact" "$noise_md5" \
  "$(b -n refuse-back pull -q --plain-http "$FAKE/chunky:v1" >/dev/null 2>&1 && b -n refuse-back run --rm "$FAKE/chunky:v1" md5sum /noise 2>&1 | cut -d' ' -f1)"

tests_done
