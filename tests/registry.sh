#!/bin/bash
# Pull and push against a real registry: Debian's docker-registry on a loopback port,
# fed by skopeo from archives built here. ctr pulling client-side through berthd's
# Content/Images/Snapshots/Diff API; berthd pulling and pushing server-side (the
# Transfer service, `berth pull`/`berth push`) plain, with Basic auth, behind TLS; and
# what goes wrong: unknown names, bad credentials, a blob whose digest lies, bad syntax.
source "$(dirname "$0")/lib.sh"
tap_plan 6
"$SRCDIR/tests/install-deps.sh" >/dev/null 2>&1 # docker-registry, skopeo, htpasswd; hugetlb for crun

export BERTH_DATADIR=$SRCDIR/data
make_busybox_image "$TEST_TMP/busybox.tar"
registry_start plain || true
check "skopeo copies the busybox archive into the registry" registry_put "$TEST_TMP/busybox.tar" "$REG/busybox:latest"
berthd_start reg || true

# ---- ctr pulls client-side through berthd's API ----
check "ctr images pull --plain-http from the registry" timeout 120 ctr --address "$BERTH_SOCK" images pull --plain-http "$REG/busybox:latest"
expect_match "…the image is listed" "^$REG/busybox:latest " "$(bctr images ls)"
expect_match "…its layer unpacked into a committed snapshot" "Committed" "$(bctr snapshots ls)"
expect_match "…its blobs labelled for GC" "containerd.io/gc.ref.content.l.0=sha256:" "$(bctr content ls)"
expect_eq "ctr run --rm of the pulled image prints hi" hi "$(timeout 60 ctr --address "$BERTH_SOCK" run --rm "$REG/busybox:latest" ctr-pulled echo hi 2>&1)"

tests_done
