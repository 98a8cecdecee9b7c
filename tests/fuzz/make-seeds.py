#!/usr/bin/env python3
"""Writes the seed corpora under tests/fuzz/corpus/<target>/ (seed-* files; crashers
found by fuzzing are committed beside them as crash-*). Run from anywhere:
    tests/fuzz/make-seeds.py"""
import gzip, io, os, shutil, struct, subprocess, sys, tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def frame(payload):
    return b"\0" + struct.pack(">I", len(payload)) + payload


def grpc():
    # One selector byte (method index modulo the number of methods), then frames.
    messages = [
        b"",
        b"\x0a\x07default",                                   # field 1: string
        b"\x0a\x03abc\x12\x05hello\x18\x2a",                  # string, string, varint
        b"\x0a\x0e\x0a\x04name\x12\x06sha256",                # nested message
        b"\x0a\x01x\x22\x0a\x0a\x03key\x12\x03val",           # a map entry
        b"\x08\x96\x01\x10\x01",                               # varints
        b"\x0a\x47sha256:" + b"0" * 64,                       # a digest string
    ]
    for i in range(0, 64, 3):
        put("grpc", "method%02d" % i, bytes([i]) + frame(messages[i % len(messages)]) + frame(messages[(i + 1) % len(messages)]))


def tar_bytes(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, arg in entries:
            info = tarfile.TarInfo(name)
            info.mode = 0o755 if kind == "dir" else 0o644
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                t.addfile(info)
            elif kind == "file":
                info.size = len(arg)
                t.addfile(info, io.BytesIO(arg))
            elif kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = arg
                t.addfile(info)
            elif kind == "hardlink":
                info.type = tarfile.LNKTYPE
                info.linkname = arg
                t.addfile(info)
    return buf.getvalue()


def layer():
    layers = {
        "plain": [("etc", "dir", None), ("etc/hostname", "file", b"berth\n"), ("bin", "dir", None),
                  ("bin/sh", "file", b"#!/bin/sh\n"), ("bin/ash", "hardlink", "bin/sh"), ("lib", "symlink", "usr/lib")],
        "whiteouts": [("a", "dir", None), ("a/.wh..wh..opq", "file", b""), ("a/keep", "file", b"k"),
                      (".wh.gone", "file", b""), ("a/.wh.old", "file", b"")],
        "dotdot": [("../escape", "file", b"x"), ("a/../../escape2", "file", b"y")],
        "symlink-escape": [("link", "symlink", "../outside"), ("link/file", "file", b"z"),
                           ("abs", "symlink", "/tmp"), ("abs/file", "file", b"z")],
        "hardlink-out": [("h", "hardlink", "../outside/x"), ("h2", "hardlink", "/etc/passwd")],
        "absolute": [("/abs-file", "file", b"a"), ("/etc/x", "file", b"b")],
        "replace": [("d", "dir", None), ("d", "file", b"now a file"), ("f", "file", b"1"), ("f", "dir", None),
                    ("f/g", "symlink", "..")],
    }
    for name, entries in layers.items():
        raw = tar_bytes(entries)
        put("layer", name + "-tar", b"\x00" + raw)
        put("layer", name + "-gzip", b"\x01" + gzip.compress(raw, mtime=0))
        put("layer", name + "-overlay", b"\x04" + raw)
        if name in ("plain", "whiteouts") and shutil.which("zstd"):
            z = subprocess.run(["zstd", "-q", "-c"], input=raw, stdout=subprocess.PIPE, check=True).stdout
            put("layer", name + "-zstd", b"\x02" + z)
    put("layer", "garbage", b"\x01not gzip at all")


def reference():
    for i, name in enumerate(["busybox", "busybox:1.36", "library/busybox", "docker.io/library/busybox:latest",
                              "localhost/app", "localhost:5000/team/app:v1", "registry.example.com/a/b/c",
                              "busybox@sha256:" + "a" * 64, "a/b:c@sha256:" + "0" * 64, "", "/", "a/", ":tag",
                              "UPPER/Case", "host:port/", "x@y/z"]):
        put("reference", "%02d" % i, name)


def image_archive():
    sep = "\n--\n"
    manifest_type = "application/vnd.oci.image.manifest.v1+json"
    oci = sep.join([
        '{"schemaVersion":2,"manifests":[{"mediaType":"%s","digest":"@1","size":#1,"annotations":'
        '{"io.containerd.image.name":"docker.io/library/fuzz:1","org.opencontainers.image.ref.name":"1"}}]}' % manifest_type,
        '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json",'
        '"digest":"@2","size":#2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"@3","size":#3}]}'
        % manifest_type,
        '{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["@3"]}}',
        "layer bytes",
    ])
    put("image-archive", "oci", oci)
    nested = sep.join([
        '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"@1","size":#1,'
        '"annotations":{"org.opencontainers.image.ref.name":"nested"}}]}',
        '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"%s",'
        '"digest":"@2","size":#2,"platform":{"architecture":"amd64","os":"linux"}}]}' % manifest_type,
        '{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"@3","size":#3},"layers":[]}',
        '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}',
    ])
    put("image-archive", "oci-nested-index", nested)
    docker = sep.join([
        '[{"Config":"%1","RepoTags":["busybox:1","example.com/x/y:2"],"Layers":["%2"]}]',
        '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["@2"]}}',
        "docker layer",
    ])
    put("image-archive", "docker", docker)
    put("image-archive", "bad-json", '{"schemaVersion":2,"manifests":[{"digest":"sha256:zz"}]}')
    put("image-archive", "docker-bad", '[{"Config":"../etc/passwd","RepoTags":[":"],"Layers":[null, 3]}]')
    # A raw archive too: an OCI layout tar, gzip'd.
    raw = tar_bytes([("oci-layout", "file", b'{"imageLayoutVersion":"1.0.0"}'),
                     ("index.json", "file", b'{"schemaVersion":2,"manifests":[]}')])
    put("image-archive", "raw-gzip", gzip.compress(raw, mtime=0))


def config():
    put("config", "empty", "")
    shutil.copy(os.path.join(HERE, "..", "..", "data", "berthd.conf"), os.path.join(CORPUS, "config", "seed-example"))
    put("config", "daemon", "[berthd]\nroot=/var/lib/berth\nstate=/run/berth\naddress=/run/berth/berthd.sock\n"
        "address-group=root\nlog-level=info\ndefault-snapshotter=overlayfs\nmax-message-size=16777216\n"
        "gc-interval=0\nplugin-dirs=/usr/lib/berth/plugins;/opt/berth\ndisabled-plugins=io.containerd.snapshotter.v1.native\n")
    put("config", "plugins", "# comment\n[plugin.snapshotter.overlayfs]\nmount-options=index=off\n\n"
        "[plugin.runtime.oci]\nbinary=crun\nallowed-binaries=runc;crun\n")
    put("config", "bad", "[berthd]\nroot\nunknown=1\n[other]\nx=y\n")
    put("config", "escapes", "[berthd]\nroot=/a\\sb\\n\\t\\\\\nlog-level=debug # trailing\n")


def shim_request():
    for i, line in enumerate(["start", "start exec-1", "kill 9 0", "kill 15 1 exec-1", "kill 9", "wait", "wait e.1",
                              "state", "state x_y", "delete", "delete exec-1", "add exec-1", "pause", "resume", "pids",
                              "update", "resize 80 24", "resize 80", "bogus", "kill -1 0 ../x\n", "start \n"]):
        put("shim-request", "%02d" % i, line + ("" if line.endswith("\n") else "\n"))


def runc_options():
    # containerd.runc.v1.Options: 1 no_pivot_root (bool), 2 no_new_keyring, 3 shim_cgroup (string),
    # 4 io_uid, 5 io_gid, 6 binary_name, 7 root, 8 criu_path, 9 systemd_cgroup ...
    put("runc-options", "empty", b"")
    put("runc-options", "binary-crun", b"\x32\x04crun")
    put("runc-options", "full", b"\x08\x01\x1a\x05/shim\x20\xe8\x07\x32\x0d/usr/bin/runc\x3a\x04/run\x48\x01")
    put("runc-options", "long-varint", b"\x08" + b"\xff" * 10 + b"\x01\x32\x04runc")
    put("runc-options", "length-past-end", b"\x32\x7frunc")
    put("runc-options", "fixed64", b"\x09" + b"\0" * 8 + b"\x32\x04runc")
    put("runc-options", "nul-in-name", b"\x32\x06runc\0x")


def spdy_dictionary():
    # The SPDY/3 header dictionary, as core/services/cri/cri-spdy.c holds it.
    import re
    src = open(os.path.join(HERE, "..", "..", "core", "cri", "cri-spdy.c")).read()
    body = src[src.index("header_dictionary[] = {"):]
    body = body[:body.index("};")]
    return bytes(int(x, 16) for x in re.findall(r"0x([0-9a-f]{2})", body))


def spdy():
    import zlib
    zdict = spdy_dictionary()

    def control(kind, payload, flags=0):
        return struct.pack(">HHI", 0x8003, kind, flags << 24 | len(payload)) + payload

    def data(stream, payload, flags=0):
        return struct.pack(">II", stream, flags << 24 | len(payload)) + payload

    def block(z, pairs):
        raw = struct.pack(">I", len(pairs))
        for name, value in pairs:
            raw += struct.pack(">I", len(name)) + name + struct.pack(">I", len(value)) + value
        return z.compress(raw) + z.flush(zlib.Z_SYNC_FLUSH)

    def syn(z, stream, pairs, flags=0):
        return control(1, struct.pack(">IIBB", stream, 0, 0, 0) + block(z, pairs), flags)

    z = zlib.compressobj(zdict=zdict)
    exec_streams = b"".join(syn(z, 2 * i + 1, [(b"streamtype", t)]) for i, t in
                            enumerate([b"error", b"stdin", b"stdout", b"stderr", b"resize"]))
    put("spdy", "exec", exec_streams + data(3, b"hello\n") + data(3, b"", 1) + data(9, b'{"Width":80,"Height":24}'))
    z = zlib.compressobj(zdict=zdict)
    put("spdy", "port-forward", syn(z, 1, [(b"streamtype", b"error"), (b"port", b"80"), (b"requestid", b"0")], 1)
        + syn(z, 3, [(b"streamtype", b"data"), (b"port", b"80"), (b"requestid", b"0")])
        + data(3, b"GET / HTTP/1.0\r\n\r\n"))
    put("spdy", "control", control(4, struct.pack(">III", 1, 7, 65536)) + control(6, struct.pack(">I", 1))
        + control(9, struct.pack(">II", 1, 4096)) + control(3, struct.pack(">II", 1, 5))
        + control(7, struct.pack(">II", 1, 0)) + control(0x42, b"xyz"))
    z = zlib.compressobj(zdict=zdict)
    put("spdy", "reply-headers", control(2, struct.pack(">I", 2) + block(z, [(b"a", b"1\x002")]))
        + control(8, struct.pack(">I", 2) + block(z, [(b"B", b"x")])))
    # Hostile: a block that inflates past the limit, a header count past the block.
    z = zlib.compressobj(zdict=zdict)
    put("spdy", "bomb", syn(z, 1, [(b"x", b"\0" * 200000)]))
    z = zlib.compressobj(zdict=zdict)
    put("spdy", "count-past-end", control(1, struct.pack(">IIBB", 1, 0, 0, 0)
                                          + z.compress(struct.pack(">I", 100000)) + z.flush(zlib.Z_SYNC_FLUSH)))
    put("spdy", "no-dictionary", control(1, struct.pack(">IIBB", 1, 0, 0, 0) + zlib.compress(b"\0\0\0\0")))
    put("spdy", "huge-length", struct.pack(">II", 1, 0xffffff) + b"x" * 16)
    put("spdy", "partial", control(1, b"\0\0\0\1")[:6])


if __name__ == "__main__":
    for f in (grpc, layer, reference, image_archive, config, shim_request, runc_options, spdy):
        f()
    print("seeds written under", CORPUS)
