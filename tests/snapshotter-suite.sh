#!/bin/bash
# The snapshotter conformance suite, run once per snapshotter by the three-line
# tests/snapshotter-NAME.sh (SNAPSHOTTER=NAME, then this). Through the real ctr: unpack with
# whiteouts and opaque dirs, owners and modes kept, views read-only, prepare/commit
# chains, diff, labels, usage, walk, remove rules, a container's rootfs, and a clean
# plugin root once everything is removed.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SN=${SNAPSHOTTER:?set SNAPSHOTTER}
require_plugins local walking oci "$SN"
tap_plan 20

berthd_start "snap-$SN" || true
IMG=$SRCDIR/tests/make-image.py
sctr () { bctr snapshots --snapshotter "$SN" "$@"; }

# Two layers: the second deletes a file, makes a dir opaque and adds a file.
L1=$TEST_TMP/l1 L2=$TEST_TMP/l2
mkdir -p "$L1/a" "$L1/b" "$L1/c" "$L2/a" "$L2/b"
echo keep >"$L1/a/keep"; echo gone >"$L1/a/gone"; echo x >"$L1/b/x"; echo old >"$L1/c/old"
: >"$L2/a/.wh.gone"; : >"$L2/b/.wh..wh..opq"; echo y >"$L2/b/y"; echo new >"$L2/d"
# A third layer with a setuid file owned by someone else (make-image.py's own layers are root's).
python3 -c 'import io, sys, tarfile
t = tarfile.open(sys.argv[1], "w")
i = tarfile.TarInfo("c/suid"); i.uid, i.gid, i.mode, i.size = 1000, 1001, 0o4751, 5
t.addfile(i, io.BytesIO(b"suid\n")); t.close()' "$TEST_TMP/owned.tar"
python3 "$IMG" "$TEST_TMP/layers.tar" --busybox --layer "$L1" --layer "$L2" --layer-tar "$TEST_TMP/owned.tar" \
  --name docker.io/library/layers:1 >/dev/null
expected=$'a\na/keep\nb\nb/y\nc\nc/old\nc/suid\nd'
tree_of () { (cd "$1" && find a b c d newfile 2>/dev/null | sort); }
top_of () { sctr tree | grep -o 'sha256:[0-9a-f]*' | tail -1; }
# mount_snapshot KEY DIR: mounts what ctr snapshots mounts prints.
mount_snapshot () { mkdir -p "$2" && sctr mounts "$2" "$1" | sh; }

check "ctr images import --snapshotter $SN (unpack)" bctr images import --snapshotter "$SN" "$TEST_TMP/layers.tar"
expect_eq "four committed layers in a chain" 4 "$(sctr ls | grep -c Committed)"
top=$(top_of)
sctr view v "$top" >/dev/null
mount_snapshot v "$TEST_TMP/v"
expect_eq "the unpacked tree honours the whiteout and the opaque dir" "$expected" "$(tree_of "$TEST_TMP/v")"
expect_eq "file contents" "keep y new" "$(cat "$TEST_TMP/v/a/keep" "$TEST_TMP/v/b/y" "$TEST_TMP/v/d" | tr '\n' ' ' | sed 's/ $//')"
expect_eq "owner and mode are kept" "1000:1001 4751" "$(stat -c '%u:%g %a' "$TEST_TMP/v/c/suid")"
echo nope 2>/dev/null >"$TEST_TMP/v/a/keep" && not_ok "a view is read-only" || ok "a view is read-only"
umount "$TEST_TMP/v"

# An active snapshot on top: changes, diff, commit, and a child of that commit.
sctr prepare work "$top" >/dev/null
mount_snapshot work "$TEST_TMP/w"
echo hello >"$TEST_TMP/w/newfile"; echo changed >"$TEST_TMP/w/a/keep"; rm "$TEST_TMP/w/c/old"; rm -r "$TEST_TMP/w/b"
umount "$TEST_TMP/w"
layer=$(sctr diff work | tar tz | sort | grep -v '/$' | tr '\n' ' ')
expect_eq "ctr snapshots diff holds exactly the change" ".wh.b a/keep c/.wh.old newfile " "$layer"
check "ctr snapshots usage of an active snapshot" sctr usage work
check "ctr snapshots commit" sctr commit mine work
expect_eq "the committed snapshot is listed with its parent" "mine $top Committed" "$(sctr ls | awk '$1 == "mine" {print $1, $2, $3}')"
sctr prepare child mine >/dev/null
mount_snapshot child "$TEST_TMP/c"
expect_eq "a child of the commit sees the committed changes" $'a\na/keep\nc\nc/suid\nd\nnewfile' "$(tree_of "$TEST_TMP/c")"
expect_eq "…with their contents" "changed hello" "$(cat "$TEST_TMP/c/a/keep" "$TEST_TMP/c/newfile" | tr '\n' ' ' | sed 's/ $//')"
umount "$TEST_TMP/c"
out=$(sctr rm mine 2>&1) && not_ok "removing a snapshot with children fails" \
  || expect_match "removing a snapshot with children fails with a clear error" "child" "$out"
expect_match "ctr snapshots usage of a committed snapshot" "^mine +[0-9.]+ ?[kKMG]?i?B +[0-9]+ *$" "$(sctr usage mine | awk 'NR == 2')"
sctr label mine color=blue >/dev/null
expect_match "labels are kept" "color.*blue" "$(sctr info mine)"
expect_eq "walk lists every snapshot" "child mine v" "$(sctr ls | awk 'NR > 1 && $1 !~ /^sha256/ {print $1}' | sort | tr '\n' ' ' | sed 's/ $//')"

# A container's rootfs, and its writes staying in its own snapshot.
out=$(timeout 60 ctr --address "$BERTH_SOCK" run --rm --snapshotter "$SN" docker.io/library/layers:1 "run-$SN" sh -c 'cat /a/keep; echo mine >/a/keep; cat /a/keep' 2>&1)
expect_eq "ctr run --snapshotter $SN: a container runs on it and writes its rootfs" $'keep\nmine' "$out"
sctr view v2 "$top" >/dev/null
mount_snapshot v2 "$TEST_TMP/v2"
expect_eq "the image's layer is untouched by the container's write" keep "$(cat "$TEST_TMP/v2/a/keep")"
umount "$TEST_TMP/v2"

# Everything removed: nothing left but empty bookkeeping.
for key in v v2 child mine work; do sctr rm "$key" >/dev/null 2>&1; done
bctr images rm --sync docker.io/library/layers:1 >/dev/null
expect_eq "with the image gone, GC leaves no snapshot" 0 "$(sctr ls | awk 'NR > 1' | wc -l)"
expect_eq "…and no snapshot directory" 0 "$(ls "$BERTH_ROOT/io.containerd.snapshotter.v1.$SN/snapshots" | wc -l)"
tests_done
