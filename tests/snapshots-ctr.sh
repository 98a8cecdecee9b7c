#!/bin/bash
# The default snapshotter and the walking differ through the real ctr: remove rules, a
# 121-layer image, hostile layers that must fail without writing anything outside the
# snapshot, and GC. What every snapshotter must do is tests/snapshotter-suite.sh.
source "$(dirname "$0")/lib.sh"
require_plugins local walking overlayfs
tap_plan 19

berthd_start snap || true
IMG=$SRCDIR/tests/make-image.py

# Two layers: the second deletes a file, makes a dir opaque and adds a file.
L1=$TEST_TMP/l1 L2=$TEST_TMP/l2
mkdir -p "$L1/a" "$L1/b" "$L1/c" "$L2/a" "$L2/b"
echo keep >"$L1/a/keep"; echo gone >"$L1/a/gone"; echo x >"$L1/b/x"; echo old >"$L1/c/old"
: >"$L2/a/.wh.gone"; : >"$L2/b/.wh..wh..opq"; echo y >"$L2/b/y"; echo new >"$L2/d"
python3 "$IMG" "$TEST_TMP/layers.tar" --busybox --layer "$L1" --layer "$L2" --name docker.io/library/layers:1 >/dev/null

bctr images import "$TEST_TMP/layers.tar" >/dev/null
bctr images rm docker.io/library/layers:1 >/dev/null

base=$(bctr snapshots ls | awk 'NR > 1 && NF == 2 {print $1}')
out=$(bctr snapshots rm "$base" 2>&1) && not_ok "removing a snapshot with children fails" \
  || expect_match "removing a snapshot with children fails with a clear error" "child" "$out"
check "ctr snapshots prepare + usage" sh -c "ctr -a '$BERTH_SOCK' snapshots prepare work1 && ctr -a '$BERTH_SOCK' snapshots usage work1"
check "ctr snapshots rm of the active snapshot" bctr snapshots rm work1

# 120 layers: the overlay options run past a page; the mount must still work.
mkdir -p "$TEST_TMP/many"
layer_args=()
for i in $(seq 1 120); do
  mkdir -p "$TEST_TMP/many/$i/layers"
  echo "$i" >"$TEST_TMP/many/$i/layers/$i"
  layer_args+=(--layer "$TEST_TMP/many/$i")
done
python3 "$IMG" "$TEST_TMP/many.tar" --busybox "${layer_args[@]}" --name docker.io/library/many:1 >/dev/null
check "an image of 121 layers imports and unpacks" bctr images import "$TEST_TMP/many.tar"
top=$(bctr snapshots tree | grep -o 'sha256:[0-9a-f]*' | tail -1)
bctr snapshots prepare many-top "$top" >/dev/null
opts=$(bctr snapshots mounts /x many-top | grep -o '\-o .*' | wc -c)
expect_match "the overlay options are longer than a page ($opts bytes)" "^(4[1-9][0-9][0-9]|[5-9][0-9]{3}|[0-9]{5,})$" "$opts"
bctr run --rm --snapshotter overlayfs docker.io/library/many:1 many-run sh -c 'cat /layers/1 /layers/120' >"$TEST_TMP/many.out" 2>&1
expect_eq "a container on the 121-layer image sees the first and the last layer" "$(printf '1\n120')" "$(cat "$TEST_TMP/many.out")"
bctr snapshots rm many-top >/dev/null
bctr images rm --sync docker.io/library/many:1 >/dev/null

bctr images import "$TEST_TMP/layers.tar" >/dev/null

# Hostile layers: each import must fail, and nothing outside may change.
OUT=$TEST_TMP/outside
mkdir -p "$OUT"
hostile () {
  local name=$1 script=$2
  /usr/bin/python3 -c "$script" "$TEST_TMP/$name.tar" "$OUT"
  python3 "$IMG" "$TEST_TMP/$name-img.tar" --busybox --layer-tar "$TEST_TMP/$name.tar" --name "docker.io/library/$name:1" >/dev/null
  bctr images import "$TEST_TMP/$name-img.tar" >"$TEST_TMP/$name.out" 2>&1
}
PY_HEAD='import io, sys, tarfile
t = tarfile.open(sys.argv[1], "w")
def add(name, data=b"pwned", **kw):
    i = tarfile.TarInfo(name)
    for k, v in kw.items(): setattr(i, k, v)
    if i.type == tarfile.REGTYPE: i.size = len(data); t.addfile(i, io.BytesIO(data))
    else: t.addfile(i)
'
hostile dotdot "$PY_HEAD"'add("../../../../../../../../../../..'"$OUT"'/dotdot")
t.close()' && not_ok "a layer with ../ is refused" || expect_match "a layer with ../ is refused" "climbs out" "$(cat "$TEST_TMP/dotdot.out")"
hostile symlink "$PY_HEAD"'add("evil", type=tarfile.SYMTYPE, linkname=sys.argv[2])
add("evil/pwned")
t.close()'
expect_eq "symlink-then-file-through-it writes nothing outside" "" "$(ls "$OUT")"
hostile hardlink "$PY_HEAD"'add("hl", type=tarfile.LNKTYPE, linkname="/etc/shadow")
t.close()' && not_ok "a hardlink to a host file is refused" || expect_match "a hardlink to a host file is refused" "hardlink hl" "$(cat "$TEST_TMP/hardlink.out")"
hostile absolute "$PY_HEAD"'add(sys.argv[2] + "/absolute")
t.close()'
expect_eq "an absolute path writes nothing outside" "" "$(ls "$OUT")"
hostile whiteout "$PY_HEAD"'add("../.wh.etc")
t.close()' && not_ok "a whiteout outside the root is refused" || expect_match "a whiteout outside the root is refused" "climbs out" "$(cat "$TEST_TMP/whiteout.out")"
printf 'not a tar at all, just bytes' >"$TEST_TMP/garbage.tar"
python3 "$IMG" "$TEST_TMP/garbage-img.tar" --layer-tar "$TEST_TMP/garbage.tar" --name docker.io/library/garbage:1 >/dev/null
out=$(bctr images import "$TEST_TMP/garbage-img.tar" 2>&1) && not_ok "a corrupt layer is refused" || expect_match "a corrupt layer is refused" "Unrecognized archive format|not a valid tar|truncated" "$out"
# GC: an image's snapshots go with it; a container's snapshot stays while the container does.
for image in $(bctr images ls -q); do bctr images rm --sync "$image" >/dev/null; done
expect_eq "with every image gone, GC leaves no committed snapshot" 0 "$(bctr snapshots ls | grep -c Committed)"
bctr images import "$TEST_TMP/layers.tar" >/dev/null
leaf=$(bctr snapshots ls | awk 'NR > 1 && /Committed/ {print $1, ($3 == "" ? "-" : $2)}' \
       | awk '{key[NR] = $1; parent[$2] = 1} END {for (i in key) if (!(key[i] in parent)) print key[i]}')
bctr snapshots prepare held "$leaf" >/dev/null
bctr images rm --sync docker.io/library/layers:1 >/dev/null
expect_eq "images rm --sync keeps the 3-layer chain under an active snapshot" 3 "$(bctr snapshots ls | grep -c Committed)"
bctr snapshots rm held >/dev/null
bctr images import --no-unpack "$TEST_TMP/layers.tar" >/dev/null
bctr images rm --sync docker.io/library/layers:1 >/dev/null
expect_eq "once nothing holds them, GC removes the image's snapshots" 0 "$(bctr snapshots ls | grep -c Committed)"
expect_eq "…and their directories" 0 "$(ls "$BERTH_ROOT"/io.containerd.snapshotter.v1.overlayfs/snapshots | wc -l)"
expect_eq "the host's /etc/shadow is untouched" "$(stat -c %h /etc/shadow)" 1
expect_eq "nothing at all was written outside" "" "$(ls -A "$OUT")"
check "berthd is still serving" bctr version
tests_done
