#!/usr/bin/python3
"""Clients that would each hold a berthd thread, or its fds, for tests/threads.sh.

threads.py streams SOCKET PID N      N idle Content.Write streams on one connection
threads.py timeout SOCKET            Events.Subscribe with a grpc-timeout past 49 days
threads.py fds SOCKET PID N          N connections held while berthd is out of fds
threads.py tcp PORT SOCKET N         N idle TCP connections to the metrics port
threads.py stalled SOCKET DIGEST N   N Content.Read of DIGEST whose clients never read:
                                     prints "ready" and holds them until killed
threads.py execsync STUBS SOCKET CONTAINER N
                                     N concurrent ExecSync "sleep 20" and CRI Version

Each prints "key value" lines for the shell to check.
"""
import asyncio
import os
import socket
import struct
import sys
import threading
import time

import grpc

VERSION = "/containerd.services.version.v1.Version/Version"
WRITE = "/containerd.services.content.v1.Content/Write"
SUBSCRIBE = "/containerd.services.events.v1.Events/Subscribe"
READ = "/containerd.services.content.v1.Content/Read"


def threads_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def version_ok(sock, timeout=20):
    ch = grpc.insecure_channel("unix:" + sock)
    try:
        ch.unary_unary(VERSION, request_serializer=lambda b: b, response_deserializer=lambda b: b)(b"", timeout=timeout)
        return True
    except grpc.RpcError:
        return False
    finally:
        ch.close()


def pb_string(field, text):
    data = text.encode()
    return bytes([field << 3 | 2, len(data)]) + data


async def idle_streams(sock, pid, n):
    ch = grpc.aio.insecure_channel("unix:" + sock)
    calls = []
    for i in range(n):
        call = ch.stream_stream(WRITE, request_serializer=lambda b: b, response_deserializer=lambda b: b)(timeout=600)
        calls.append(call)
    # One STAT each (an ingest opened), then nothing: the streams stay open and idle.
    for i, call in enumerate(calls):
        await call.write(pb_string(2, "threads-idle-%d" % i))
    # One deadline for all: a daemon that cannot serve them must not hold the test.
    reads = [asyncio.ensure_future(call.read()) for call in calls]
    done, pending = await asyncio.wait(reads, timeout=180)
    for r in pending:
        r.cancel()
    answered = sum(1 for r in done if not r.exception())
    await asyncio.sleep(1)
    print("answered %d" % answered)
    print("threads %d" % threads_of(pid), flush=True)
    # ctr, not grpc's sync API: that one does not mix with grpc.aio in one process.
    ctr = await asyncio.create_subprocess_exec("ctr", "--address", sock, "version", stdout=asyncio.subprocess.DEVNULL,
                                               stderr=asyncio.subprocess.DEVNULL)
    try:
        rc = await asyncio.wait_for(ctr.wait(), 60)
    except asyncio.TimeoutError:
        ctr.kill()
        rc = -1
    print("version %s" % ("ok" if rc == 0 else "failed"), flush=True)
    # Leaving the streams open: grpc.aio's close can hang with 1000 calls on it, and
    # exiting closes the connection, which ends every call at berthd.
    os._exit(0)


# ---- a raw HTTP/2 client: the header has to be exactly what we say ----

def frame(ftype, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def literal(name, value):
    # HPACK literal header field without indexing, new name, no Huffman.
    n, v = name.encode(), value.encode()
    assert len(n) < 127 and len(v) < 127
    return b"\x00" + bytes([len(n)]) + n + bytes([len(v)]) + v


def huge_timeout(sock):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    headers = b"".join(literal(k, v) for k, v in [
        (":method", "POST"), (":scheme", "http"), (":path", SUBSCRIBE), (":authority", "localhost"),
        ("content-type", "application/grpc"), ("te", "trailers"),
        # 4294968 s = 4294968000 ms, which as a guint is 704 ms.
        ("grpc-timeout", "4294968S")])
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b"") + frame(1, 4, 1, headers)
              + frame(0, 1, 1, b"\x00\x00\x00\x00\x00"))
    s.settimeout(0.2)
    buf = b""
    ended = False
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline and not ended:
        try:
            chunk = s.recv(65536)
            if not chunk:
                ended = True
                break
            buf += chunk
        except socket.timeout:
            pass
        while len(buf) >= 9:
            length = int.from_bytes(buf[0:3], "big")
            if len(buf) < 9 + length:
                break
            ftype, flags = buf[3], buf[4]
            stream = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
            buf = buf[9 + length:]
            if ftype == 4 and not flags & 1:
                s.sendall(frame(4, 1, 0, b""))  # SETTINGS ack
            if stream == 1 and (ftype == 3 or (ftype in (0, 1) and flags & 1)):
                ended = True  # RST_STREAM, or trailers / END_STREAM
            if ftype == 7:
                ended = True  # GOAWAY
    s.close()
    print("subscription %s" % ("ended" if ended else "open"))


def stalled_reads(sock, digest, n):
    # Raw HTTP/2: a grpc client would read its socket. These never do, and never open
    # their flow-control window past HTTP/2's initial 64 KiB.
    conns = []
    headers = b"".join(literal(k, v) for k, v in [
        (":method", "POST"), (":scheme", "http"), (":path", READ), (":authority", "localhost"),
        ("content-type", "application/grpc"), ("te", "trailers"), ("containerd-namespace", "default")])
    request = pb_string(1, digest)
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(sock)
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b"") + frame(1, 4, 1, headers)
                  + frame(0, 1, 1, b"\x00" + struct.pack(">I", len(request)) + request))
        conns.append(s)
    print("ready", flush=True)
    while True:
        time.sleep(60)


def hold_fds(sock, pid, n):
    conns = []
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        try:
            s.connect(sock)
            conns.append(s)
        except OSError as e:
            print("# connect: %s" % e)
            break
    time.sleep(1)
    before = cpu_seconds(pid)
    time.sleep(4)
    print("held %d" % len(conns))
    print("cpu_ms %d" % int((cpu_seconds(pid) - before) * 1000))
    for s in conns:
        s.close()


def hold_tcp(port, sock, n):
    conns = []
    for _ in range(n):
        s = socket.socket()
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", port))
            conns.append(s)
        except OSError as e:
            print("# connect: %s" % e)
            break
    time.sleep(1)
    print("held %d" % len(conns))
    print("version %s" % ("ok" if version_ok(sock) else "failed"))
    for s in conns:
        s.close()


def execsync(stubs, sock, container, n):
    sys.path.insert(0, stubs)
    import api_pb2  # noqa: E402
    import api_pb2_grpc  # noqa: E402
    ch = grpc.insecure_channel("unix://" + sock)
    stub = api_pb2_grpc.RuntimeServiceStub(ch)
    results = []

    def one():
        try:
            r = stub.ExecSync(api_pb2.ExecSyncRequest(container_id=container, cmd=["sleep", "20"], timeout=90),
                              timeout=120)
            results.append(r.exit_code)
        except grpc.RpcError as e:
            results.append(e.code().name)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    started = time.monotonic()
    try:
        stub.Version(api_pb2.VersionRequest(version="v1"), timeout=10)
        version = "ok"
    except grpc.RpcError as e:
        version = e.code().name
    took = time.monotonic() - started
    running = sum(t.is_alive() for t in threads)
    print("version %s" % version)
    print("execs_running_after_version %d" % running)
    print("version_ms %d" % int(took * 1000))
    for t in threads:
        t.join()
    print("exec_ok %d" % sum(1 for r in results if r == 0))


mode = sys.argv[1]
if mode == "streams":
    asyncio.run(idle_streams(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
    sys.stdout.flush()
    os._exit(0)  # grpc's threads must not hold the exit
elif mode == "timeout":
    huge_timeout(sys.argv[2])
elif mode == "fds":
    hold_fds(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
elif mode == "tcp":
    hold_tcp(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
elif mode == "stalled":
    stalled_reads(sys.argv[2], sys.argv[3], int(sys.argv[4]))
elif mode == "execsync":
    execsync(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
