#!/bin/bash
# The layers the walking differ makes (snapshots diff) with what ustar alone cannot hold:
# a path longer than 100 and 155 bytes, a name that cannot be split, a symlink target over
# 100 bytes, uid/gid above ustar's octal range, a hardlink, a whiteout. Read back with GNU
# tar and python's tarfile (what containerd's Go reader parses the same way), then applied
# by berthd as a layer of an imported image.
source "$(dirname "$0")/lib.sh"
require_plugins walking overlayfs
tap_plan 14

berthd_start difftar || true
I=docker.io/library/busybox:latest
make_busybox_image "$TEST_TMP/busybox.tar" "$I"
bctr images import "$TEST_TMP/busybox.tar" >/dev/null
layer=$(bctr snapshots ls 2>&1 | awk '$NF == "Committed" {print $1; exit}')
bctr snapshots prepare work "$layer" >/dev/null
W=$TEST_TMP/work
mkdir -p "$W"
ctr --address "$BERTH_SOCK" snapshots mounts "$W" work | sh

D120=$(printf 'd%.0s' $(seq 120)) F60=$(printf 'f%.0s' $(seq 60)) N150=$(printf 'n%.0s' $(seq 150))
T200=/$(printf 't%.0s' $(seq 199))
LONG=long/$D120/$F60 # 186 bytes, splits into ustar's prefix and name
mkdir -p "$W/long/$D120"
echo long >"$W/$LONG"
echo unsplittable >"$W/long/$N150"
ln -s "$T200" "$W/symlink"
echo big-ids >"$W/ids"; chown 3000000:3000001 "$W/ids"
echo linked >"$W/hard-a"; ln "$W/hard-a" "$W/hard-b"
rm "$W/etc/group"
umount "$W"

bctr snapshots diff work >"$TEST_TMP/layer.tar.gz" 2>"$TEST_TMP/diff.err"
expect_eq "snapshots diff makes a layer" "0" "$?"
gunzip -c "$TEST_TMP/layer.tar.gz" >"$TEST_TMP/layer.tar"
expect_match "GNU tar reads it back, the long path whole" "$LONG" "$(tar -tvf "$TEST_TMP/layer.tar" 2>&1)"

py () { python3 - "$TEST_TMP/layer.tar" "$@" <<'PY'
import sys, tarfile
t = {m.name: m for m in tarfile.open(sys.argv[1])}
what, name = sys.argv[2], sys.argv[3]
m = t.get(name)
if m is None: print("missing"); sys.exit()
print({"type": m.type.decode(), "link": m.linkname, "ids": f"{m.uid}:{m.gid}", "size": m.size}[what])
PY
}
expect_eq "tarfile: the 186-byte path" "0" "$(py type "$LONG")"
expect_eq "tarfile: the 150-byte name (pax path)" "0" "$(py type "long/$N150")"
expect_eq "tarfile: the 200-byte symlink target" "$T200" "$(py link symlink)"
expect_eq "tarfile: uid/gid above 2097151" "3000000:3000001" "$(py ids ids)"
expect_eq "tarfile: both names of the hardlink, with the data" "7 7" "$(py size hard-a) $(py size hard-b)"
expect_eq "tarfile: the deleted file as a whiteout" "0" "$(py type etc/.wh.group)"
expect_eq "ends in two zero blocks, right after the last entry's data" "ok" "$(python3 - "$TEST_TMP/layer.tar" <<'PY'
import sys, tarfile
data = open(sys.argv[1], "rb").read()
t = tarfile.open(sys.argv[1])
last = t.getmembers()[-1]
end = last.offset_data + (last.size + 511) // 512 * 512
print("ok" if len(data) == end + 1024 and data[end:] == bytes(1024) else f"{len(data)} != {end} + 1024")
PY
)"

# Applied by berthd: an image of busybox plus this layer, unpacked and mounted.
python3 "$SRCDIR/tests/make-image.py" "$TEST_TMP/applied.tar" --busybox --layer-tar "$TEST_TMP/layer.tar" \
  --name docker.io/library/applied:1 >/dev/null
check "the layer imports and unpacks" bctr images import "$TEST_TMP/applied.tar"
M=$TEST_TMP/mnt
mkdir -p "$M"
bctr images mount docker.io/library/applied:1 "$M" >/dev/null 2>&1
expect_eq "applied: the long path and the unsplittable name" "long unsplittable" \
  "$(cat "$M/$LONG" "$M/long/$N150" 2>&1 | tr '\n' ' ' | sed 's/ $//')"
expect_eq "applied: the symlink target" "$T200" "$(readlink "$M/symlink")"
expect_eq "applied: the owner above 2097151" "3000000:3000001" "$(stat -c %u:%g "$M/ids")"
expect_eq "applied: the whiteout removed /etc/group" "gone" "$([ -e "$M/etc/group" ] && echo there || echo gone)"
bctr images unmount --rm "$M" >/dev/null 2>&1

tests_done
