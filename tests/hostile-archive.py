#!/usr/bin/env python3
"""Builds hostile OCI image archives for tests/hostile-input.sh, without any network.

  hostile-archive.py OUT.tar KIND [--name REF] [--depth N] [--repeat K] [--levels L]

KIND is one of
  deep-manifest  the image's manifest is {"config": [[[…]]]} nested --depth levels
  deep-index     index.json itself is nested --depth levels
  deep-config    a valid manifest whose config blob is nested --depth levels
  repeat         --levels indexes, each listing the next one --repeat times; the last
                 lists one small valid manifest --repeat times (a walk without a memo of
                 visited digests costs repeat**levels)
  wide           one index listing --repeat different-platform copies of a manifest
  size0          a valid image whose layer descriptor declares size 0
Every blob the documents name is in the archive, so only the named defect is wrong.
"""
import argparse, gzip, hashlib, io, json, os, platform, tarfile

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("kind", choices=["deep-manifest", "deep-index", "deep-config", "repeat", "wide", "size0"])
p.add_argument("--name", default="hostile:latest")
p.add_argument("--depth", type=int, default=300000)
p.add_argument("--repeat", type=int, default=300)
p.add_argument("--levels", type=int, default=3)
a = p.parse_args()

ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
blobs = {}


def put(data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return digest, len(data)


def nested(depth):
    return ("[" * depth + "]" * depth).encode()


def small_image(layer_size=None, config=None):
    """A valid one-layer manifest (one file, /hello); returns its descriptor."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        # Each image's own layer: one already in the store would not be fetched.
        hello = ("hi from %s\n" % a.name).encode()
        info = tarfile.TarInfo("hello")
        info.size = len(hello)
        info.mtime = 1700000000
        tar.addfile(info, io.BytesIO(hello))
    raw = raw.getvalue()
    ldigest, lsize = put(gzip.compress(raw, mtime=0))
    if config is None:
        config = json.dumps({"architecture": ARCH, "os": "linux", "config": {"Cmd": ["/hello"]},
                             "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]}}).encode()
    cdigest, csize = put(config)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdigest, "size": csize},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ldigest,
                            "size": lsize if layer_size is None else layer_size}]}
    mdigest, msize = put(json.dumps(manifest).encode())
    return {"mediaType": OCI_MANIFEST, "digest": mdigest, "size": msize}


def with_platform(desc, arch=ARCH):
    return dict(desc, platform={"architecture": arch, "os": "linux"})


index_json = None
if a.kind == "deep-manifest":
    digest, size = put(b'{"schemaVersion": 2, "mediaType": "' + OCI_MANIFEST.encode() + b'", "config": '
                       + nested(a.depth) + b"}")
    top = {"mediaType": OCI_MANIFEST, "digest": digest, "size": size}
elif a.kind == "deep-config":
    top = small_image(config=nested(a.depth))
elif a.kind == "deep-index":
    top = None
    index_json = nested(a.depth)
elif a.kind == "size0":
    top = small_image(layer_size=0)
elif a.kind == "wide":
    child = small_image()
    # Each entry a distinct platform variant, so nothing dedups them.
    entries = [dict(child, platform={"architecture": ARCH, "os": "linux", "variant": "v%d" % i}) for i in range(a.repeat)]
    digest, size = put(json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode())
    top = {"mediaType": OCI_INDEX, "digest": digest, "size": size}
else:
    top = with_platform(small_image())
    for _ in range(a.levels):
        digest, size = put(json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [top] * a.repeat}).encode())
        top = {"mediaType": OCI_INDEX, "digest": digest, "size": size}

if index_json is None:
    tag = a.name.rsplit(":", 1)[1] if ":" in a.name.rsplit("/", 1)[-1] else "latest"
    index_json = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                             "manifests": [dict(top, annotations={"io.containerd.image.name": a.name,
                                                                  "org.opencontainers.image.ref.name": tag})]}).encode()
with tarfile.open(a.out, "w") as tar:
    def add(name, data):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mtime = 1700000000
        tar.addfile(info, io.BytesIO(data))
    add("oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
    add("index.json", index_json)
    for digest, data in sorted(blobs.items()):
        add("blobs/sha256/" + digest[7:], data)
