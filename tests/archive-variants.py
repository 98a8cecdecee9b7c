#!/usr/bin/env python3
"""Variants of an OCI image archive made by make-image.py, for tests/test-image-archive.

  archive-variants.py info IN.tar            prints: manifest-digest config-digest layer-digest
  archive-variants.py docker IN.tar OUT.tar  the same image as `docker save` writes it
  archive-variants.py corrupt IN.tar OUT.tar one byte of the layer changed, name kept
  archive-variants.py missing IN.tar OUT.tar the layer blob left out
"""
import io, json, sys, tarfile


def load(path):
    t = tarfile.open(path)
    files = {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}
    index = json.loads(files["index.json"])
    mdesc = index["manifests"][0]
    manifest = json.loads(files["blobs/sha256/" + mdesc["digest"].split(":")[1]])
    return files, mdesc, manifest


def write(path, files):
    with tarfile.open(path, "w") as out:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))


def blob(desc):
    return "blobs/sha256/" + desc["digest"].split(":")[1]


mode, src = sys.argv[1], sys.argv[2]
files, mdesc, manifest = load(src)
layer = manifest["layers"][0]
if mode == "info":
    print(mdesc["digest"], manifest["config"]["digest"], layer["digest"])
elif mode == "docker":
    chex = manifest["config"]["digest"].split(":")[1]
    lhex = layer["digest"].split(":")[1]
    out = {
        chex + ".json": files[blob(manifest["config"])],
        lhex + "/layer.tar": files[blob(layer)],
        "manifest.json": json.dumps([{"Config": chex + ".json", "RepoTags": ["busybox:docker", "example.com/x/y:2"],
                                      "Layers": [lhex + "/layer.tar"]}]).encode(),
        "repositories": json.dumps({"busybox": {"docker": lhex}}).encode(),
    }
    write(sys.argv[3], out)
elif mode == "corrupt":
    data = bytearray(files[blob(layer)])
    data[len(data) // 2] ^= 0xFF
    files[blob(layer)] = bytes(data)
    write(sys.argv[3], files)
elif mode == "missing":
    del files[blob(layer)]
    write(sys.argv[3], files)
