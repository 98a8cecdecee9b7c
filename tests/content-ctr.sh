#!/bin/bash
# Content, images and leases through Debian's real ctr: import, read back, GC, leases,
# ingests (resumed after a daemon kill), namespace isolation, bad input.
source "$(dirname "$0")/lib.sh"
require_plugins local
tap_plan 22

make_busybox_image "$TEST_TMP/busybox.tar"
berthd_start content || true
MANIFEST=$(tar -xOf "$TEST_TMP/busybox.tar" index.json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["manifests"][0]["digest"])')

check "ctr images import --no-unpack" bctr images import --no-unpack "$TEST_TMP/busybox.tar"
expect_match "ctr images ls shows it with the manifest digest" "docker.io/library/busybox:latest .*$MANIFEST" "$(bctr images ls)"
content=$(bctr content ls)
expect_eq "ctr content ls lists index, manifest, config and layer" 4 "$(printf '%s\n' "$content" | grep -c '^sha256:')"
layer=$(printf '%s\n' "$content" | grep -o 'gc.ref.content.l.0=sha256:[0-9a-f]*' | cut -d= -f2)
got=$(bctr content get "$layer" | sha256sum | cut -d' ' -f1)
expect_eq "ctr content get of the layer hashes to its digest" "${layer#sha256:}" "$got"
expect_eq "…and is byte-identical to the archive's blob" "$(tar -xOf "$TEST_TMP/busybox.tar" "blobs/sha256/${layer#sha256:}" | sha256sum | cut -d' ' -f1)" "$got"

expect_none "namespace b does not see namespace default's image" '' bctr -n b images ls -q
expect_none "…nor its content" '' bctr -n b content ls -q
out=$(bctr -n b content get "$layer" 2>&1) && not_ok "content get from b fails" || expect_match "content get from b: not found" "not found" "$out"

# A blob held by a lease outlives the image.
bctr leases create --id keeper >/dev/null
check "a lease takes the layer as a resource (Leases.AddResource)" "$SRCDIR/tests/grpc-call.py" "$BERTH_SOCK" /containerd.services.leases.v1.Leases/AddResource 1=keeper "2={" "1=$layer" 2=content "}"
bctr images rm --sync docker.io/library/busybox:latest >/dev/null
left=$(bctr content ls -q)
expect_eq "after images rm --sync only the leased layer is left" "$layer" "$left"
expect_eq "…and only its blob stays on disk" 1 "$(ls "$BERTH_ROOT"/io.containerd.content.v1.content/blobs/sha256 | wc -l)"
bctr leases rm --sync keeper >/dev/null
expect_none "once the lease is gone, GC takes it" '' bctr content ls -q
expect_eq "…off the disk too" 0 "$(ls "$BERTH_ROOT"/io.containerd.content.v1.content/blobs/sha256 | wc -l)"

# Ingest: start a write that stops half way, see it active, kill the daemon, resume.
head -c 3000000 /dev/urandom >"$TEST_TMP/blob"
want=sha256:$(sha256sum "$TEST_TMP/blob" | cut -d' ' -f1)
/usr/bin/python3 - "$BERTH_SOCK" "$TEST_TMP/blob" <<'PY'
import sys, grpc
sock, path = sys.argv[1], sys.argv[2]
data = open(path, "rb").read()
def enc_varint(n):
    out = b""
    while True:
        b = n & 0x7f; n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n: return out
def field(num, wire, payload):
    return enc_varint(num << 3 | wire) + payload
def req(action, ref=b"", offset=0, chunk=b"", total=0):
    m = field(1, 0, enc_varint(action))
    if ref: m += field(2, 2, enc_varint(len(ref)) + ref)
    if total: m += field(3, 0, enc_varint(total))
    if offset: m += field(5, 0, enc_varint(offset))
    if chunk: m += field(6, 2, enc_varint(len(chunk)) + chunk)
    return m
ch = grpc.insecure_channel("unix:" + sock)
write = ch.stream_stream("/containerd.services.content.v1.Content/Write", request_serializer=lambda b: b, response_deserializer=lambda b: b)
half = len(data) // 2
msgs = [req(0, b"resume-me", total=len(data)), req(1, b"resume-me", 0, data[:half])]
for _ in write(iter(msgs), timeout=10):
    pass
PY
active=$(bctr content active)
expect_match "ctr content active shows the half-done ingest" "resume-me +1\.5 ?MB" "$(printf '%s' "$active" | tr '\t' ' ')"
berthd_stop KILL
partial=$(ls "$BERTH_ROOT"/io.containerd.content.v1.content/blobs/sha256 | wc -l)
expect_eq "killed mid-ingest: nothing half-written under blobs/" 0 "$partial"
berthd_start content || true
expect_match "after restart the ingest is still there at its offset" "resume-me +1\.5 ?MB" "$(bctr content active | tr '\t' ' ')"
check "ctr content ingest resumes and commits it" sh -c "bctr () { ctr --address '$BERTH_SOCK' \"\$@\"; }; bctr content ingest --expected-size 3000000 --expected-digest $want resume-me <'$TEST_TMP/blob'"
expect_eq "the committed blob has the right bytes" "${want#sha256:}" "$(bctr content get "$want" | sha256sum | cut -d' ' -f1)"

# Bad input.
head -c 1000 /dev/urandom >"$TEST_TMP/small"
out=$(bctr content ingest --expected-digest sha256:0000000000000000000000000000000000000000000000000000000000000000 bad-ref <"$TEST_TMP/small" 2>&1) && not_ok "a digest mismatch is refused" \
  || expect_match "a digest mismatch is refused, naming both digests" "unexpected commit digest sha256:[0-9a-f]{64}, expected sha256:0{64}" "$out"
expect_eq "…and nothing new is stored" 1 "$(bctr content ls -q | wc -l)"
out=$("$SRCDIR/tests/grpc-call.py" "$BERTH_SOCK" /containerd.services.content.v1.Content/Info 1=sha256:nothex)
expect_match "a malformed digest is refused with INVALID_ARGUMENT" "^INVALID_ARGUMENT: invalid digest" "$out"
big=$(head -c 5000 /dev/zero | tr '\0' x)
out=$(bctr content label "$want" "k=$big" 2>&1) && not_ok "a label over 4 KiB is refused" || expect_match "a label over 4 KiB is refused" "greater than maximum size" "$out"
tests_done
