#!/usr/bin/python3
"""One raw unary gRPC call, for requests ctr cannot make.

  grpc-call.py SOCKET /pkg.Service/Method [field=value ...] [-n NAMESPACE]
Fields build a protobuf message: NUM=string, NUM:i=integer, NUM={...} nests (field=value
pairs inside braces, space separated). Prints "OK" or "<CODE>: <details>".
"""
import sys

import grpc


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def encode(tokens):
    out, i = b"", 0
    while i < len(tokens):
        key, _, value = tokens[i].partition("=")
        i += 1
        if value == "{":
            depth, inner = 1, []
            while depth:
                t = tokens[i]
                i += 1
                depth += t.endswith("={") - (t == "}")
                if depth:
                    inner.append(t)
            payload = encode(inner)
            out += varint(int(key) << 3 | 2) + varint(len(payload)) + payload
        elif key.endswith(":i"):
            out += varint(int(key[:-2]) << 3) + varint(int(value))
        else:
            data = value.encode()
            out += varint(int(key) << 3 | 2) + varint(len(data)) + data
    return out


args = sys.argv[1:]
ns = "default"
if "-n" in args:
    k = args.index("-n")
    ns = args[k + 1]
    del args[k : k + 2]
sock, method, fields = args[0], args[1], args[2:]
ch = grpc.insecure_channel("unix:" + sock)
call = ch.unary_unary(method, request_serializer=lambda b: b, response_deserializer=lambda b: b)
try:
    call(encode(fields), timeout=10, metadata=(("containerd-namespace", ns),))
    print("OK")
except grpc.RpcError as e:
    print("%s: %s" % (e.code().name, e.details()))
    sys.exit(1)
