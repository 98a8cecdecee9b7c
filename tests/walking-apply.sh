#!/bin/bash
# walking-apply.sh — the walking differ's apply: it inflates on a "layer-inflate" thread
# while the tar is written, and creates each entry first, replacing what is there only
# when the creation finds it taken. A layer corrupt mid-stream or hostile after thousands
# of entries fails with a clear error and leaves no thread behind; a layer listing a path
# twice (file then dir, dir then file, symlink then file, dir then dir) ends as its last
# entry says.
source "$(dirname "$0")/lib.sh"
require_plugins local walking overlayfs
tap_plan 8

# OCI archives of one gzip layer each.
python3 - "$TEST_TMP" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile
out = sys.argv[1]
def layer(entries):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, arg in entries:
            i = tarfile.TarInfo(name); i.mtime = 1700000000; i.mode = 0o644
            if kind == "dir": i.type, i.mode = tarfile.DIRTYPE, arg
            elif kind == "sym": i.type, i.linkname = tarfile.SYMTYPE, arg
            if kind == "file":
                i.size = len(arg); t.addfile(i, io.BytesIO(arg))
            else:
                t.addfile(i)
    return b.getvalue()
def archive(path, ref, raw, corrupt=False):
    data = gzip.compress(raw, compresslevel=1, mtime=0)
    if corrupt:
        # Half the tar as one gzip member, then a member with an unknown compression
        # method: inflate refuses it there, in the middle of the stream.
        half = len(raw) // 2 // 512 * 512
        data = gzip.compress(raw[:half], compresslevel=1, mtime=0) + b"\x1f\x8b\x07\x00" + os.urandom(65536)
    blobs = {}
    def put(d):
        h = hashlib.sha256(d).hexdigest(); blobs[h] = d; return {"digest": "sha256:" + h, "size": len(d)}
    l = put(data); l["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
    cfg = {"architecture": "amd64", "os": "linux", "config": {},
           "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]}}
    c = put(json.dumps(cfg).encode()); c["mediaType"] = "application/vnd.oci.image.config.v1+json"
    m = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "config": c, "layers": [l]}).encode())
    m["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
    m["annotations"] = {"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": ref.rsplit(":", 1)[1]}
    files = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
             "index.json": json.dumps({"schemaVersion": 2, "manifests": [m]}).encode()}
    files.update({"blobs/sha256/" + h: d for h, d in blobs.items()})
    with tarfile.open(path, "w") as t:
        for n, d in files.items():
            i = tarfile.TarInfo(n); i.size = len(d); t.addfile(i, io.BytesIO(d))
# 3000 files of random (incompressible) bytes: several MB, many ring buffers of inflate.
many = [("d", "dir", 0o755)] + [("d/f%04d" % i, "file", os.urandom(2048)) for i in range(3000)]
archive(out + "/corrupt.tar", "docker.io/library/corrupt:v1", layer(many), corrupt=True)
archive(out + "/climb.tar", "docker.io/library/climb:v1",
        layer(many[:1500] + [("../evil", "file", b"x")] + many[1500:]))
archive(out + "/twice.tar", "docker.io/library/twice:v1", layer([
    ("a", "file", b"a file first\n"), ("a", "dir", 0o750),
    ("d", "dir", 0o755), ("d/x", "file", b"x\n"), ("d", "file", b"d is a file now\n"),
    ("l", "sym", "/etc/passwd"), ("l", "file", b"l is a file now\n"),
    ("f", "file", b"old\n"), ("f", "file", b"new\n"),
    ("k", "dir", 0o755), ("k/c", "file", b"c\n"), ("k", "dir", 0o700)]))
PY

berthd_start walking-apply || { not_ok "berthd starts"; tests_done; }
# Its threads named layer-inflate (the name is the thread's comm).
inflaters () { cat /proc/"$BERTHD_PID"/task/*/comm 2>/dev/null | grep -c '^layer-inflate$'; }
ntasks () { ls /proc/"$BERTHD_PID"/task | wc -l; }
diag "berthd threads before: $(ntasks)"

out=$(timeout 120 ctr --address "$BERTH_SOCK" images import "$TEST_TMP/corrupt.tar" 2>&1)
expect_match "a layer whose gzip turns invalid half way (after 1500 files): refused as not valid gzip" \
  "not valid gzip" "$out"
expect_eq "…no layer-inflate thread is left" 0 "$(inflaters)"
out=$(timeout 120 ctr --address "$BERTH_SOCK" images import "$TEST_TMP/climb.tar" 2>&1)
expect_match "a layer with ../evil after 1500 files (more to inflate behind it): refused as climbing out" \
  "climbs out" "$out"
expect_eq "…no layer-inflate thread is left" 0 "$(inflaters)"
# The whole count too (GLib's pools come and go, so as a figure, not a check).
diag "berthd threads after the two failed imports: $(ntasks)"

out=$(timeout 120 ctr --address "$BERTH_SOCK" images import "$TEST_TMP/twice.tar" 2>&1)
check "a layer listing paths twice imports and unpacks" grep -q "twice" <<<"$out"
key=$(ctr --address "$BERTH_SOCK" snapshots ls | awk 'NR > 1 && $NF == "Committed" { print $1 }' | head -1)
mnt=$TEST_TMP/mnt; mkdir -p "$mnt"
ctr --address "$BERTH_SOCK" snapshots view walking-apply-view "$key" >/dev/null
ctr --address "$BERTH_SOCK" snapshots mounts "$mnt" walking-apply-view | sh
got=$(cd "$mnt" && for p in a d l f k; do printf '%s %s %s|' "$p" "$(stat -c '%F %a' "$p")" "$( [ -f "$p" ] && cat "$p")"; done)
kc=$(cat "$mnt/k/c" 2>&1)
umount "$mnt"
expect_eq "…each path as its last entry says (file→dir, dir→file, symlink→file, file→file, dir kept with the last mode)" \
  "a directory 750 |d regular file 644 d is a file now|l regular file 644 l is a file now|f regular file 644 new|k directory 700 |" "$got"
expect_eq "…the dir that stayed a dir keeps what the layer put in it between" "c" "$kc"
check "berthd is up and answers ctr version" timeout 30 ctr --address "$BERTH_SOCK" version
tests_done
