#!/usr/bin/python3
"""Hostile and heavy clients against a berthd socket (TAP output).

grpc-hostile.py SOCKET BERTHD_PID
Raw bytes that are not HTTP/2, truncated and oversized gRPC frames, an unknown method,
malformed protobuf, a client that vanishes mid-stream, and 200 concurrent calls: every
call gets the right status, the daemon stays up, other clients are unaffected, and its
memory returns near its idle level.
"""
import os, socket, sys, threading, time

import grpc

SOCK, PID = sys.argv[1], int(sys.argv[2])
VERSION = "/containerd.services.version.v1.Version/Version"
n = 0
failed = 0


def ok(cond, desc, extra=""):
    global n, failed
    n += 1
    if not cond:
        failed += 1
    print(("ok" if cond else "not ok") + " %d - %s" % (n, desc))
    if not cond and extra:
        print("# " + str(extra).replace("\n", "\n# "))


def rss_kb():
    with open("/proc/%d/status" % PID) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])


def channel():
    return grpc.insecure_channel("unix:" + SOCK)


def raw_call(method, payload_bytes, timeout=5):
    ch = channel()
    call = ch.unary_unary(method, request_serializer=lambda b: b, response_deserializer=lambda b: b)
    try:
        call(payload_bytes, timeout=timeout)
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details()
    finally:
        ch.close()


def version_works():
    return raw_call(VERSION, b"")[0] == grpc.StatusCode.OK


print("1..17")
ok(version_works(), "a normal Version call works")
idle = rss_kb()

# Not HTTP/2 at all.
s = socket.socket(socket.AF_UNIX)
s.connect(SOCK)
s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + os.urandom(4096))
s.settimeout(5)
try:
    while s.recv(4096):
        pass
except OSError:
    pass
s.close()
ok(version_works(), "garbage bytes: the connection is dropped and the daemon serves others")

# A client that sends the preface and half a frame, then vanishes.
s = socket.socket(socket.AF_UNIX)
s.connect(SOCK)
s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x12\x04\x00")
s.close()
ok(version_works(), "truncated HTTP/2 frame then disconnect: daemon unaffected")

code, details = raw_call("/containerd.services.nothing.v1.Nothing/Nope", b"")
ok(code == grpc.StatusCode.UNIMPLEMENTED and "Nothing/Nope" in details, "unknown method → UNIMPLEMENTED naming it",
   (code, details))

code, details = raw_call("/containerd.services.namespaces.v1.Namespaces/Get", b"\x0a\xff\xff\xff\xff\x0f")
ok(code == grpc.StatusCode.INVALID_ARGUMENT and "malformed" in details, "malformed protobuf → INVALID_ARGUMENT",
   (code, details))

# Field number 0 hidden in a two-byte key inside a Container (found by tests/fuzz/fuzz-grpc.c):
# protobuf-c unpacks it, but the copy berthd stores would not unpack again.
def ld(field, payload):
    n, v = len(payload), b""
    while True:
        v += bytes([(n & 0x7F) | (0x80 if n >> 7 else 0)])
        n >>= 7
        if not n:
            return bytes([field << 3 | 2]) + v + payload
spec = ld(1, b"types.containerd.io/opencontainers/runtime-spec/1/Spec") + ld(2, b"{}")
container = ld(1, b"field-zero") + ld(3, b"img") + ld(4, ld(1, b"io.containerd.runc.v2")) + ld(5, spec) + b"\x80\x00\x00"
code, details = raw_call("/containerd.services.containers.v1.Containers/Create", ld(1, container))
ok(code == grpc.StatusCode.INVALID_ARGUMENT and "malformed" in details and version_works(),
   "a field numbered 0 inside a request → INVALID_ARGUMENT, daemon up", (code, details))

code, details = raw_call(VERSION, b"\x00" * (17 * 1024 * 1024), timeout=20)
ok(code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in details,
   "17 MiB message → RESOURCE_EXHAUSTED", (code, details))
ok(version_works(), "…and the daemon still serves")

ch = channel()
get = ch.unary_unary("/containerd.services.namespaces.v1.Namespaces/Get", request_serializer=lambda b: b,
                     response_deserializer=lambda b: b)
try:
    get(b"\x0a\x07missing", timeout=5, metadata=(("containerd-namespace", "bad..name"),))
    ok(False, "an invalid namespace header is refused")
except grpc.RpcError as e:
    ok(e.code() == grpc.StatusCode.INVALID_ARGUMENT and "bad..name" in e.details(), "an invalid namespace header is refused",
       (e.code(), e.details()))
ch.close()

# grpc-go (kubelet, crictl, dockerd) sends a unix socket's path as :authority.
for authority in (SOCK, SOCK.replace("/", "%2F"), "localhost"):
    ch = grpc.insecure_channel("unix:" + SOCK, options=(("grpc.default_authority", authority),))
    call = ch.unary_unary(VERSION, request_serializer=lambda b: b, response_deserializer=lambda b: b)
    try:
        call(b"", timeout=5)
        ok(True, "a call with :authority %s is served" % authority)
    except grpc.RpcError as e:
        ok(False, "a call with :authority %s is served" % authority, (e.code(), e.details()))
    ch.close()

# Two namespace values: containerd takes the first (grpc-go puts the newest first).
code, details = None, ""
ch = channel()
call = ch.unary_unary(VERSION, request_serializer=lambda b: b, response_deserializer=lambda b: b)
try:
    call(b"", timeout=5, metadata=(("containerd-namespace", "default"), ("containerd-namespace", "bad..name")))
    code = grpc.StatusCode.OK
except grpc.RpcError as e:
    code, details = e.code(), e.details()
ch.close()
ok(code == grpc.StatusCode.OK, "of two containerd-namespace values the first is used", (code, details))

# A subscriber that goes away mid-stream.
ch = channel()
sub = ch.unary_stream("/containerd.services.events.v1.Events/Subscribe", request_serializer=lambda b: b,
                      response_deserializer=lambda b: b)
stream = sub(b"", timeout=30)
time.sleep(0.3)
stream.cancel()
ch.close()
time.sleep(0.3)
ok(version_works(), "an Events subscriber cancelling mid-stream is torn down cleanly")

# 200 concurrent calls on separate connections and on one.
results = []
lock = threading.Lock()


def worker(shared):
    ch = shared or channel()
    call = ch.unary_unary(VERSION, request_serializer=lambda b: b, response_deserializer=lambda b: b)
    try:
        call(b"", timeout=20)
        r = grpc.StatusCode.OK
    except grpc.RpcError as e:
        r = e.code()
    with lock:
        results.append(r)
    if not shared:
        ch.close()


shared = channel()
threads = [threading.Thread(target=worker, args=(shared if i % 2 else None,)) for i in range(200)]
for t in threads:
    t.start()
for t in threads:
    t.join()
shared.close()
ok(len(results) == 200 and all(r == grpc.StatusCode.OK for r in results), "200 concurrent calls all succeed",
   [r for r in results if r != grpc.StatusCode.OK][:5])

ok(os.path.exists("/proc/%d" % PID), "the daemon is still running")
time.sleep(1)
now = rss_kb()
# The 17 MiB message and 200 connections came and went: memory must come back.
ok(now < idle + 12 * 1024, "RSS back near idle (idle %d KiB, now %d KiB)" % (idle, now))
print("# %d tests, %d failed" % (n, failed))
sys.exit(1 if failed else 0)
