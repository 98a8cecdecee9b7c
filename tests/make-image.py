#!/usr/bin/env python3
"""Builds an OCI image archive locally, without any network.

  make-image.py OUT.tar [--name REF] [--busybox] [--layer DIR]... [--compression gzip|none]
                [--cmd ARG]... [--entrypoint ARG]... [--env K=V]... [--user USER]
                [--layer-tar FILE]...

--busybox makes a first layer from Debian's busybox-static (/bin/busybox plus one
symlink per applet, /etc/passwd, /etc/group). Each --layer DIR adds DIR's tree as one
more layer, in order; OCI whiteouts in it (.wh.NAME, .wh..wh..opq) are kept as they are.
Each --layer-tar FILE adds an uncompressed tar exactly as given (for hostile layers);
layers are added in the order --busybox, --layer..., --layer-tar....
The archive is an OCI image layout whose index.json carries the
io.containerd.image.name annotation that `ctr images import` honours. Output is
deterministic: the same inputs give the same digests.
"""
import argparse, gzip, hashlib, io, json, os, platform, shutil, subprocess, sys, tarfile, tempfile

MTIME = 1700000000


def go_arch():
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def busybox_tree(dest):
    busybox = shutil.which("busybox") or "/bin/busybox"
    os.makedirs(os.path.join(dest, "bin"))
    shutil.copy2(busybox, os.path.join(dest, "bin", "busybox"))
    applets = subprocess.run([busybox, "--list"], check=True, capture_output=True, text=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            os.symlink("busybox", os.path.join(dest, "bin", applet))
    os.makedirs(os.path.join(dest, "etc"))
    with open(os.path.join(dest, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    with open(os.path.join(dest, "etc", "group"), "w") as f:
        f.write("root:x:0:\nnogroup:x:65534:\n")
    for d in ("root", "tmp", "proc", "sys", "dev"):
        os.makedirs(os.path.join(dest, d))
    os.chmod(os.path.join(dest, "tmp"), 0o1777)


def layer_tar(src):
    """Uncompressed tar of src, sorted, owned by root, fixed mtimes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for root, dirs, files in os.walk(src):
            dirs.sort()
            for name in sorted(dirs + files):
                path = os.path.join(root, name)
                arc = os.path.relpath(path, src)
                info = tar.gettarinfo(path, arcname=arc)
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                info.mtime = MTIME
                if info.isreg():
                    with open(path, "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
    return buf.getvalue()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--name", default="docker.io/library/busybox:latest")
    p.add_argument("--busybox", action="store_true")
    p.add_argument("--layer", action="append", default=[])
    p.add_argument("--layer-tar", action="append", default=[])
    p.add_argument("--compression", choices=["gzip", "none"], default="gzip")
    p.add_argument("--cmd", action="append")
    p.add_argument("--entrypoint", action="append")
    p.add_argument("--env", action="append", default=[])
    p.add_argument("--user")
    a = p.parse_args()

    work = tempfile.mkdtemp()
    try:
        blobs = os.path.join(work, "blobs", "sha256")
        os.makedirs(blobs)

        def put(data):
            digest = hashlib.sha256(data).hexdigest()
            with open(os.path.join(blobs, digest), "wb") as f:
                f.write(data)
            return "sha256:" + digest, len(data)

        layer_dirs = []
        if a.busybox:
            bb = os.path.join(work, "busybox-root")
            busybox_tree(bb)
            layer_dirs.append(bb)
        layer_dirs += a.layer
        if not layer_dirs and not a.layer_tar:
            sys.exit("make-image.py: give --busybox and/or --layer DIR")

        layers, diff_ids = [], []
        raws = [layer_tar(d) for d in layer_dirs] + [open(f, "rb").read() for f in a.layer_tar]
        for raw in raws:
            diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
            if a.compression == "gzip":
                data = gzip.compress(raw, compresslevel=6, mtime=0)
                media = "application/vnd.oci.image.layer.v1.tar+gzip"
            else:
                data, media = raw, "application/vnd.oci.image.layer.v1.tar"
            digest, size = put(data)
            layers.append({"mediaType": media, "digest": digest, "size": size})

        config = {
            "architecture": go_arch(), "os": "linux",
            "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                       "Cmd": a.cmd or ([] if a.entrypoint else ["sh"]), "WorkingDir": "/"},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": "berth tests/make-image.py"} for _ in diff_ids],
        }
        config["config"]["Env"] += a.env
        if a.entrypoint:
            config["config"]["Entrypoint"] = a.entrypoint
        if a.user:
            config["config"]["User"] = a.user
        cdigest, csize = put(json.dumps(config, sort_keys=True).encode())
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdigest, "size": csize},
                    "layers": layers}
        mdigest, msize = put(json.dumps(manifest, sort_keys=True).encode())
        tag = a.name.rsplit(":", 1)[1] if ":" in a.name.rsplit("/", 1)[-1] else "latest"
        index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                 "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mdigest,
                                "size": msize, "platform": {"architecture": go_arch(), "os": "linux"},
                                "annotations": {"io.containerd.image.name": a.name,
                                                "org.opencontainers.image.ref.name": tag}}]}
        with open(os.path.join(work, "index.json"), "w") as f:
            json.dump(index, f, sort_keys=True)
        with open(os.path.join(work, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)
        with tarfile.open(a.out, "w") as tar:
            for name in ["oci-layout", "index.json"] + ["blobs/sha256/" + n for n in sorted(os.listdir(blobs))]:
                tar.add(os.path.join(work, name), arcname=name)
        print(mdigest)
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
