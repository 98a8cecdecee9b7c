#!/usr/bin/python3
"""A client of berthd's CRI streaming server for tests/cri.sh (python3-websocket).

  cri-stream.py channels URL [STDIN_TEXT [UNTIL_TEXT]]
      Opens URL with v5.channel.k8s.io (or v4), sends STDIN_TEXT on stream 0 and then
      v5's close of stream 0, and reads until the server closes (or, with UNTIL_TEXT,
      until stdout holds it). Prints {"protocol", "1": stdout, "2": stderr, "3": status}.
  cri-stream.py forward URL REQUEST_TEXT   (backslash escapes such as \r\n decoded)
      Port forwarding (v4.channel.k8s.io) of the first port: sends REQUEST_TEXT on the
      data channel and prints {"ports": [data, error port prefixes], "data", "error"}.
  cri-stream.py stall URL SECONDS
      Opens URL and reads nothing for SECONDS (a stalled client), then what it got in
      its first read; prints "stalled, then N bytes".
Either prints "status N" when the server refuses the WebSocket with HTTP status N.
"""
import json
import sys
import time

import websocket

mode, url = sys.argv[1:3]
try:
    protocols = ["v4.channel.k8s.io"] if mode == "forward" else ["v5.channel.k8s.io", "v4.channel.k8s.io"]
    ws = websocket.create_connection(url, subprotocols=protocols, timeout=30)
except websocket.WebSocketBadStatusException as e:
    print("status %d" % e.status_code)
    sys.exit(0)

channels = {}
firsts = {}


def receive(until=None):
    while True:
        opcode, data = ws.recv_data()
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return
        if opcode != websocket.ABNF.OPCODE_BINARY or not data:
            continue
        channel, payload = data[0], data[1:]
        if mode == "forward" and channel not in firsts:
            firsts[channel] = int.from_bytes(payload[:2], "little")
            payload = payload[2:]
        channels[channel] = channels.get(channel, b"") + payload
        if until is not None and until.encode() in channels.get(1, b""):
            return


if mode == "stall":
    time.sleep(float(sys.argv[3]))
    opcode, data = ws.recv_data()
    print("stalled, then %d bytes" % len(data))
elif mode == "forward":
    ws.send_binary(b"\x00" + sys.argv[3].encode().decode("unicode_escape").encode())
    receive()
    print(json.dumps({"ports": [firsts.get(0), firsts.get(1)],
                      "data": channels.get(0, b"").decode(errors="replace"),
                      "error": channels.get(1, b"").decode(errors="replace")}))
else:
    if len(sys.argv) > 3 and sys.argv[3]:
        ws.send_binary(b"\x00" + sys.argv[3].encode())
        ws.send_binary(b"\xff\x00")
    receive(sys.argv[4] if len(sys.argv) > 4 else None)
    print(json.dumps({"protocol": ws.getsubprotocol(),
                      **{str(k): v.decode(errors="replace") for k, v in channels.items()}}))
ws.close()
