#!/bin/bash
# Images, leases and GC through Debian's real ctr: image size and digest as ctr computes
# them, labels and filters, tags, events, namespaces sharing blobs, GC of unpacked
# snapshots (active ones kept), expiring leases, gc.root, bad input.
source "$(dirname "$0")/lib.sh"
require_plugins local walking overlayfs
tap_plan 44

IMG=docker.io/library/busybox:latest
make_busybox_image "$TEST_TMP/busybox.tar"
berthd_start images || true
BLOBS=$BERTH_ROOT/io.containerd.content.v1.content/blobs/sha256
blobs_on_disk () { find "$BLOBS" -type f | wc -l; }
grpc () { "$SRCDIR/tests/grpc-call.py" "$BERTH_SOCK" "$@"; }

# What ctr should show, from the archive itself: the target manifest's digest, and the
# size ctr computes (manifest + config + layers) in ctr's own format.
read -r INDEX MANIFEST SIZE < <(/usr/bin/python3 - "$TEST_TMP/busybox.tar" <<'PY'
import json, sys, tarfile
t = tarfile.open(sys.argv[1])
blob = lambda d: json.load(t.extractfile("blobs/sha256/" + d.split(":")[1]))
m = json.load(t.extractfile("index.json"))["manifests"][0]
man = blob(m["digest"])
size = float(m["size"] + man["config"]["size"] + sum(l["size"] for l in man["layers"]))
units = ["B", "KiB", "MiB", "GiB"]
i = 0
while size >= 1024 and i < len(units) - 1:
    size /= 1024; i += 1
import hashlib
index = "sha256:" + hashlib.sha256(t.extractfile("index.json").read()).hexdigest()
print(index, m["digest"], "%02.1f %s" % (size, units[i]))
PY
)

bctr events >"$TEST_TMP/events" 2>&1 &
EVENTS_PID=$!
sleep 0.3

check "ctr images import --no-unpack" bctr images import --no-unpack "$TEST_TMP/busybox.tar"
row=$(bctr images ls | grep "^$IMG ")
expect_match "images ls: the manifest digest" " $MANIFEST " "$row"
expect_match "images ls: the size ctr computes ($SIZE)" " $SIZE " "$row"
expect_eq "images ls -q" "$IMG" "$(bctr images ls -q)"

# Labels (Images.Update with a labels.<k> field mask) and filters.
check "ctr images label sets a label" bctr images label "$IMG" team=blue
expect_match "…and images ls shows it" "team=blue" "$(bctr images ls | grep "^$IMG ")"
expect_eq "filter name==" "$IMG" "$(bctr images ls -q "name==$IMG")"
expect_eq "filter labels.team==blue" "$IMG" "$(bctr images ls -q 'labels.team==blue')"
expect_none "filter labels.team==red matches nothing" '' bctr images ls -q 'labels.team==red'
expect_eq "filter target.digest==" "$IMG" "$(bctr images ls -q "target.digest==$MANIFEST")"
check "ctr images label with an empty value clears it" bctr images label "$IMG" team=
expect_none "…and the filter no longer matches" '' bctr images ls -q 'labels.team==blue'
out=$(bctr images ls -q '==x' 2>&1) && not_ok "a malformed filter is refused" || expect_match "a malformed filter is refused" "expected a field name.*invalid argument" "$out"

# Tags share blobs.
check "ctr images tag" bctr images tag "$IMG" docker.io/library/busybox:copy
expect_eq "both names point at the same manifest" "2" "$(bctr images ls | grep -c " $MANIFEST ")"
out=$(bctr images tag "$IMG" docker.io/library/busybox:copy 2>&1) && not_ok "tagging onto an existing name fails" \
  || expect_match "tagging onto an existing name fails: already exists" "already exists" "$out"

# Namespace b imports the same archive: no second copy of any blob.
check "namespace b imports the same archive" bctr -n b images import --no-unpack "$TEST_TMP/busybox.tar"
expect_eq "…and sees its four blobs" 4 "$(bctr -n b content ls -q | wc -l)"
expect_eq "…the archive's index among them" "$INDEX" "$(bctr -n b content ls -q | grep -x "$INDEX")"
expect_eq "…stored once on disk" 4 "$(blobs_on_disk)"
bctr images rm --sync "$IMG" >/dev/null
# The archive's index blob is referenced by nothing once the import's lease is gone:
# the first GC takes it (containerd does the same); manifest, config and layer stay.
expect_eq "the image's blobs stay while the default namespace's tag holds them" 3 "$(bctr content ls -q | wc -l)"
expect_none "…the unreferenced index blob went in every namespace" "grep -x $INDEX" bctr -n b content ls -q
bctr images rm --sync docker.io/library/busybox:copy >/dev/null
expect_none "with both names gone the default namespace sees no content" '' bctr content ls -q
expect_eq "…but namespace b's image keeps its blobs on disk" 3 "$(blobs_on_disk)"
layer=$(bctr -n b content ls | grep -o 'gc.ref.content.l.0=sha256:[0-9a-f]*' | cut -d= -f2)
expect_eq "…readable from b" "${layer#sha256:}" "$(bctr -n b content get "$layer" | sha256sum | cut -d' ' -f1)"
bctr -n b images rm --sync "$IMG" >/dev/null
expect_eq "once b removes it too, nothing is left on disk" 0 "$(blobs_on_disk)"

sleep 0.3
kill "$EVENTS_PID" 2>/dev/null; wait "$EVENTS_PID" 2>/dev/null
ev=$(cat "$TEST_TMP/events")
expect_match "events: /images/create" "/images/create.*$IMG" "$ev"
expect_match "events: /images/update" "/images/update.*$IMG" "$ev"
expect_match "events: /images/delete" "/images/delete.*busybox:copy" "$ev"

# An unpacked image: GC takes its snapshots with it, except what an active snapshot needs.
check "ctr images import (unpack to overlayfs)" bctr images import "$TEST_TMP/busybox.tar"
committed () { bctr snapshots ls | awk '/Committed/ {print $1}'; }
chain=$(committed)
expect_match "one committed layer snapshot" "^sha256:[0-9a-f]{64}$" "$chain"
bctr snapshots prepare work "$chain" >/dev/null
bctr images rm --sync "$IMG" >/dev/null
expect_none "images rm --sync: the content goes" '' bctr content ls -q
expect_eq "…the layer snapshot stays under the active one" "$chain" "$(committed)"
bctr snapshots rm work >/dev/null
bctr leases create --id trigger >/dev/null
bctr leases rm --sync trigger >/dev/null
expect_none "with the active snapshot gone, the next GC takes the layer" "awk 'NR > 1'" bctr snapshots ls

# Leases: an expiring one lets go of its blob once expired, not before; gc.root keeps
# one without any reference. No check depends on how fast this machine is: the lease
# that must still hold lasts an hour, the one that must expire is waited for.
printf 'leased for a second' >"$TEST_TMP/a"
printf 'rooted' >"$TEST_TMP/b"
printf 'leased for an hour' >"$TEST_TMP/c"
da=sha256:$(sha256sum <"$TEST_TMP/a" | cut -d' ' -f1)
db=sha256:$(sha256sum <"$TEST_TMP/b" | cut -d' ' -f1)
dc=sha256:$(sha256sum <"$TEST_TMP/c" | cut -d' ' -f1)
bctr content ingest ref-a <"$TEST_TMP/a"
bctr content ingest ref-b <"$TEST_TMP/b"
bctr content ingest ref-c <"$TEST_TMP/c"
bctr content label "$db" containerd.io/gc.root=yes >/dev/null
bctr leases create --id brief --expires 1s >/dev/null
bctr leases create --id lasting --expires 1h >/dev/null
expect_match "leases ls shows the expiry label" "brief .*containerd.io/gc.expire=" "$(bctr leases ls)"
check "Leases.AddResource puts the blob under the lease" grpc /containerd.services.leases.v1.Leases/AddResource 1=brief "2={" "1=$da" 2=content "}"
check "…and under the lasting one" grpc /containerd.services.leases.v1.Leases/AddResource 1=lasting "2={" "1=$dc" 2=content "}"
# ctr writes the expiry in whole seconds; GC runs after each trigger lease is removed.
for _ in $(seq 60); do
  bctr leases create --id trigger >/dev/null
  bctr leases rm --sync trigger >/dev/null
  bctr leases ls -q | grep -qx brief || break
  sleep 0.5
done
expect_none "once it expires GC releases the lease…" "grep -x brief" bctr leases ls -q
expect_eq "while a lease lasts its blob stays" "$dc" "$(bctr content ls -q | grep -x "$dc")"
bctr leases rm --sync lasting >/dev/null
expect_eq "…and its blob; the gc.root blob stays" "$db" "$(bctr content ls -q)"

# Bad input.
out=$(bctr images rm docker.io/library/nothing:1 2>&1)
expect_match "images rm of an unknown image: not found" "not found" "$out"
out=$(grpc /containerd.services.images.v1.Images/Create "1={" 1=x "3={" 1=application/vnd.oci.image.manifest.v1+json 2=sha256:short "}" "}")
expect_match "Images.Create with a malformed target digest: INVALID_ARGUMENT" "^INVALID_ARGUMENT" "$out"
# containerd has no rule for lease ids (ctr names one after a directory); berth bounds their length.
out=$(bctr leases create --id "$(printf 'l%.0s' $(seq 200))" 2>&1) && not_ok "an over-long lease id is refused" \
  || expect_match "an over-long lease id is refused" "greater than maximum length" "$out"
out=$(grpc /containerd.services.content.v1.Content/Delete 1=sha256:0000000000000000000000000000000000000000000000000000000000000000)
expect_match "Content.Delete of a missing blob: NOT_FOUND" "^NOT_FOUND: .*not found" "$out"
tests_done
