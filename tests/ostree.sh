#!/bin/bash
# The ostree snapshotter beyond the conformance suite (tests/snapshotter-ostree.sh):
# file-level deduplication against overlayfs on images that share files, containers
# run with `berth run` and `ctr run`, hardlinked repo objects never changed by a
# container, one lower dir however many layers, usage and prune, and kill -9 during a
# commit leaving a repo that passes `ostree fsck` and a snapshot committed or active.
source "$(dirname "$0")/lib.sh"
require_plugins local walking oci overlayfs ostree
command -v ostree >/dev/null || { echo "1..0 # SKIP the ostree CLI is not installed (tests/install-deps.sh)"; exit 0; }
tap_plan 20

berthd_start ostree || true
IMG=$SRCDIR/tests/make-image.py
export BERTH_DATADIR=$SRCDIR/data BERTH_LOG_DIR=$TEST_TMP/logs
BERTH="$BUILDDIR/core/cli/berth --address $BERTH_SOCK"
REPO=$BERTH_ROOT/io.containerd.snapshotter.v1.ostree/repo
OSTREE_ROOT=$BERTH_ROOT/io.containerd.snapshotter.v1.ostree
OVERLAY_ROOT=$BERTH_ROOT/io.containerd.snapshotter.v1.overlayfs
sctr () { bctr snapshots --snapshotter ostree "$@"; }

# However many layers, a child of a committed snapshot has one lower dir.
layer_args=()
for i in $(seq 1 20); do mkdir -p "$TEST_TMP/many/$i/layers"; echo "$i" >"$TEST_TMP/many/$i/layers/$i"; layer_args+=(--layer "$TEST_TMP/many/$i"); done
python3 "$IMG" "$TEST_TMP/many.tar" --busybox "${layer_args[@]}" --name docker.io/library/many:1 >/dev/null
bctr images import --snapshotter ostree "$TEST_TMP/many.tar" >/dev/null
top=$(sctr tree | grep -o 'sha256:[0-9a-f]*' | tail -1)
sctr prepare many-top "$top" >/dev/null
lower=$(sctr mounts /x many-top | grep -o 'lowerdir=[^ ,]*')
expect_match "a 21-layer image: one lower dir ($lower)" "^lowerdir=[^:]+$" "$lower"
mkdir -p "$TEST_TMP/mt"; sctr mounts "$TEST_TMP/mt" many-top | sh
expect_eq "…holding every layer" "1 20" "$(cat "$TEST_TMP/mt/layers/1" "$TEST_TMP/mt/layers/20" | tr '\n' ' ' | sed 's/ $//')"
umount "$TEST_TMP/mt"; sctr rm many-top >/dev/null

# Shared files: 40 × 64 KiB. Images 1 and 2 share a base layer and differ on top;
# images 3 and 4 are built independently, each holding the same files in another layer
# (and in 4, under another directory), which layer sharing cannot see.
S=$TEST_TMP/src
mkdir -p "$S/shared/data" "$S/top1" "$S/top2" "$S/own3/data" "$S/own4/lib/files" "$S/extra4/etc"
for i in $(seq 40); do head -c 65536 /dev/urandom >"$S/shared/data/f$i"; done
echo one >"$S/top1/which"; echo two >"$S/top2/which"
cp -a "$S/shared/data/." "$S/own3/data/"; echo three >"$S/own3/which"
cp -a "$S/shared/data/." "$S/own4/lib/files/"; echo four >"$S/extra4/etc/which"
python3 "$IMG" "$TEST_TMP/i1.tar" --busybox --layer "$S/shared" --layer "$S/top1" --name docker.io/library/dedup:1 >/dev/null
python3 "$IMG" "$TEST_TMP/i2.tar" --busybox --layer "$S/shared" --layer "$S/top2" --name docker.io/library/dedup:2 >/dev/null
python3 "$IMG" "$TEST_TMP/i3.tar" --busybox --layer "$S/own3" --name docker.io/library/dedup:3 >/dev/null
python3 "$IMG" "$TEST_TMP/i4.tar" --busybox --layer "$S/extra4" --layer "$S/own4" --name docker.io/library/dedup:4 >/dev/null

for sn in overlayfs ostree; do
  for i in 1 2 3 4; do bctr images import --snapshotter "$sn" "$TEST_TMP/i$i.tar" >/dev/null || diag "import $i into $sn failed"; done
done
du_overlay=$(du -s --block-size=1K "$OVERLAY_ROOT" | cut -f1)
du_ostree=$(du -s --block-size=1K "$OSTREE_ROOT" | cut -f1)
diag "du of the plugin roots with 4 images: overlayfs ${du_overlay} KiB, ostree ${du_ostree} KiB"
[ "$du_ostree" -lt "$du_overlay" ] && ok "ostree uses strictly less disk than overlayfs ($du_ostree < $du_overlay KiB)" \
  || not_ok "ostree uses strictly less disk than overlayfs ($du_ostree < $du_overlay KiB)"
# The shared files are 2.5 MiB; overlayfs holds them three times (the shared base once).
expect_eq "…by a clear margin: at most 80 % of overlayfs's" yes "$([ $((du_ostree * 100)) -le $((du_overlay * 80)) ] && echo yes)"
# Image 4's top layer holds only files image 3 has too: removing it would free almost nothing.
top4=$($BERTH image inspect docker.io/library/dedup:4 | python3 -c 'import json, sys; print(json.load(sys.stdin)["chainIDs"][-1])')
usage4=$(sctr usage "$top4" | awk 'NR == 2 {print $2 $3}')
diag "usage of image 4's top snapshot: $usage4 (its layer: 2.5 MiB of shared files)"
expect_match "usage counts only the bytes a snapshot holds alone" "^[0-9.]+(B|KiB)$" "$usage4"
check "ostree fsck passes on the repo" ostree fsck --repo="$REPO"

# Containers: berth run and ctr run on ostree-backed snapshots.
expect_eq "berth run --snapshotter ostree" one "$(timeout 60 $BERTH run --rm --snapshotter ostree docker.io/library/dedup:1 cat /which 2>&1)"
expect_eq "ctr run --snapshotter ostree" four "$(timeout 60 ctr --address "$BERTH_SOCK" run --rm --snapshotter ostree docker.io/library/dedup:4 run4 cat /etc/which 2>&1)"

# A container writes to a file whose lower copy is a hardlink to a repo object.
object=$(find "$OSTREE_ROOT/checkouts" -path '*/data/f1' | head -1)
[ -n "$object" ] || object=$(ls "$OSTREE_ROOT"/checkouts/*/data/f1 2>/dev/null | head -1)
before=$(sha256sum <"$S/shared/data/f1")
links=$(stat -c %h "$object" 2>/dev/null)
[ "${links:-0}" -gt 1 ] && ok "the checkout's file is a hardlink ($links links)" || not_ok "the checkout's file is a hardlink (${links:-none})"
out=$(timeout 60 ctr --address "$BERTH_SOCK" run --rm --snapshotter ostree docker.io/library/dedup:3 w3 \
  sh -c 'echo scribble >>/data/f1; echo scribble >/data/f2; tail -c 9 /data/f1' 2>&1)
expect_eq "the container sees its own write" scribble "$out"
expect_eq "the hardlinked object keeps its content" "$before" "$(sha256sum <"$object")"
check "ostree fsck passes after the container's writes" ostree fsck --repo="$REPO"

# Remove prunes: with every image gone, the repo holds nothing.
for i in 1 2 3 4; do bctr images rm --sync "docker.io/library/dedup:$i" >/dev/null; done
bctr images rm --sync docker.io/library/many:1 >/dev/null
expect_eq "with every image gone, no committed ostree snapshot is left" 0 "$(sctr ls | awk 'NR > 1' | wc -l)"
expect_eq "…and prune left no file object in the repo" 0 "$(find "$REPO/objects" -name '*.file' | wc -l)"

# kill -9 during a commit: 6 MiB in 300 files, killed at varied moments.
big=$TEST_TMP/big
mkdir -p "$big"
for i in $(seq 300); do head -c 20480 /dev/urandom >"$big/f$i"; done
states=""
for delay in 0.1 0.4 1 4; do
  key=crash-$delay
  sctr prepare "$key" >/dev/null
  mkdir -p "$TEST_TMP/k"; sctr mounts "$TEST_TMP/k" "$key" | sh; cp -a "$big/." "$TEST_TMP/k/"; umount "$TEST_TMP/k"
  sctr commit "committed-$delay" "$key" >/dev/null 2>&1 &
  sleep "$delay"
  kill -9 "$BERTHD_PID"
  wait "$BERTHD_PID" 2>/dev/null
  berthd_start ostree || diag "berthd did not restart"
  active=$(sctr ls | awk -v k="$key" '$1 == k {print $NF}')
  committed=$(sctr ls | awk -v k="committed-$delay" '$1 == k {print $NF}')
  states="$states ${active:-none}/${committed:-none}"
done
diag "after each kill (active/committed):$states"
expect_match "after every kill the snapshot is committed or still active, never both or neither" \
  "^( (Active/none|none/Committed)){4}$" "$states"
check "ostree fsck passes after the kills" ostree fsck --repo="$REPO"
expect_eq "only active snapshots keep an upper dir (a committed one's is dropped, after a crash at start-up)" \
  "$(sctr ls | awk 'NR > 1 && $NF == "Active"' | wc -l)" "$(ls "$OSTREE_ROOT/snapshots" | wc -l)"
for delay in 0.1 0.4 1 4; do
  sctr ls | grep -q "^crash-$delay " && sctr commit "committed-$delay" "crash-$delay" >/dev/null
done
mkdir -p "$TEST_TMP/after"
sctr view after-view committed-0.1 >/dev/null && sctr mounts "$TEST_TMP/after" after-view | sh
expect_eq "a commit after the kills holds all the files, intact" "$(cd "$big" && cat f* | sha256sum)" "$(cd "$TEST_TMP/after" && cat f* 2>/dev/null | sha256sum)"
umount "$TEST_TMP/after" 2>/dev/null
sctr rm after-view >/dev/null

# A reboot (the state dir is on tmpfs): checkouts were renamed into place unsynced, so
# none is trusted; they are made again when needed.
berthd_stop
rm -rf "$BERTH_STATE"
berthd_start ostree || diag "berthd did not restart"
expect_eq "after a reboot no checkout is kept" "" "$(ls "$OSTREE_ROOT/checkouts")"
sctr view after-reboot committed-0.1 >/dev/null && sctr mounts "$TEST_TMP/after" after-reboot | sh
expect_eq "…and a view of a commit is checked out again, intact" "$(cd "$big" && cat f* | sha256sum)" "$(cd "$TEST_TMP/after" && cat f* 2>/dev/null | sha256sum)"
umount "$TEST_TMP/after" 2>/dev/null
tests_done
