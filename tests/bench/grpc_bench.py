#!/usr/bin/python3
"""gRPC latency and throughput probe: the same client against any containerd-API socket.

  grpc_bench.py SOCKET sequential N     -> N Version calls one after another
  grpc_bench.py SOCKET parallel N M     -> N Version calls spread over M concurrent streams
Prints one JSON line: {"calls": N, "seconds": S, "p50_us": …, "p99_us": …, "errors": E}.
"""
import json, sys, threading, time

import grpc

METHOD = "/containerd.services.version.v1.Version/Version"


def main():
    sock, mode, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    streams = int(sys.argv[4]) if mode == "parallel" else 1
    channel = grpc.insecure_channel("unix:" + sock)
    call = channel.unary_unary(METHOD, request_serializer=lambda _: b"", response_deserializer=lambda b: b)
    call(None, timeout=10)  # connect and warm up
    latencies, errors, lock = [], [0], threading.Lock()

    def worker(count):
        local = []
        for _ in range(count):
            t = time.perf_counter()
            try:
                call(None, timeout=10)
            except grpc.RpcError:
                with lock:
                    errors[0] += 1
            local.append(time.perf_counter() - t)
        with lock:
            latencies.extend(local)

    start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(n // streams,)) for _ in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1e6
    print(json.dumps({"calls": len(latencies), "seconds": round(seconds, 3), "p50_us": round(pick(0.5), 1),
                      "p99_us": round(pick(0.99), 1), "errors": errors[0]}))


if __name__ == "__main__":
    main()
