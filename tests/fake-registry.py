#!/usr/bin/env python3
"""A small read-only registry (distribution API v2) serving one OCI image archive, for
tests of what a real registry will not do on demand.

  fake-registry.py ARCHIVE.tar PORTFILE [--repo NAME] [--tag TAG] [--corrupt-layers]
                   [--bearer USER:PASS] [--flaky N] [--drop-after BYTES]

Listens on 127.0.0.1 on a free port and writes the port to PORTFILE.
--corrupt-layers  serves every layer with one byte changed (its digest no longer matches)
--bearer U:P      wants a Bearer token from /token, which it gives for Basic U:P
--flaky N         answers the first N blob requests with 503 (clients must retry)
--drop-after B    cuts each layer's first transfer after B bytes (clients must resume
                  with a Range request); the requests seen are logged to PORTFILE.log
--refuse-patch    answers PATCH (chunked uploads) with 405, as registries that only
                  take monolithic uploads do
--endless-layers  answers a layer request with random bytes without end (no length, up to
                  1 GiB), logging "sent DIGEST BYTES" once the client hangs up
A manifest the registry cannot parse itself (nested too deep) is served as it is.

Pushes are taken too (POST, PATCH with Content-Range, PUT ?digest= checked against the
bytes, manifests by tag), kept in memory and served back.
"""
import argparse, base64, hashlib, http.server, json, os, sys, tarfile, threading, uuid

args = argparse.ArgumentParser()
args.add_argument("archive")
args.add_argument("portfile")
args.add_argument("--repo", default="busybox")
args.add_argument("--tag", default="latest")
args.add_argument("--corrupt-layers", action="store_true")
args.add_argument("--bearer")
args.add_argument("--flaky", type=int, default=0)
args.add_argument("--drop-after", type=int, default=0)
args.add_argument("--refuse-patch", action="store_true")
args.add_argument("--endless-layers", action="store_true")
opts = args.parse_args()

blobs = {}
with tarfile.open(opts.archive) as tar:
    for member in tar.getmembers():
        if member.isfile() and member.name.lstrip("./").startswith("blobs/sha256/"):
            blobs["sha256:" + member.name.rsplit("/", 1)[1]] = tar.extractfile(member).read()
    index = json.load(tar.extractfile("index.json"))
top = index["manifests"][0]
try:
    layers = {l["digest"] for l in json.loads(blobs[top["digest"]]).get("layers", [])}
except (ValueError, RecursionError, AttributeError, TypeError):
    layers = set()
lock = threading.Lock()
state = {"flaky": opts.flaky, "dropped": set()}
uploads = {}   # session id -> bytearray
manifests = {opts.tag: (top["mediaType"], top["digest"])}  # tag or digest -> (media type, digest)
manifests[top["digest"]] = manifests[opts.tag]
log = open(opts.portfile + ".log", "a", buffering=1)
TOKEN = "t0k3n-" + hashlib.sha256(os.urandom(8)).hexdigest()[:16]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send(self, code, body=b"", headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, code, ecode, message):
        self.send(code, json.dumps({"errors": [{"code": ecode, "message": message}]}).encode(),
                  [("Content-Type", "application/json")])

    def authorized(self):
        if not opts.bearer:
            return True
        if self.headers.get("Authorization") == "Bearer " + TOKEN:
            return True
        host = self.headers.get("Host")
        body = json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}).encode()
        self.send(401, body, [("WWW-Authenticate",
                               'Bearer realm="http://%s/token",service="fake",scope="repository:%s:pull"' % (host, opts.repo)),
                              ("Content-Type", "application/json")])
        return False

    def endless(self, ref):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        sent, chunk = 0, os.urandom(65536)
        try:
            while self.command != "HEAD" and sent < (1 << 30):
                self.wfile.write(chunk)
                sent += len(chunk)
        except OSError:
            pass
        log.write("sent %s %d\n" % (ref, sent))

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        path = self.path.split("?")[0]
        log.write("%s %s %s\n" % (self.command, path, self.headers.get("Range", "-")))
        if path == "/token":
            want = "Basic " + base64.b64encode(opts.bearer.encode()).decode()
            if self.headers.get("Authorization") != want:
                return self.send(401, b'{"details":"bad credentials"}')
            return self.send(200, json.dumps({"token": TOKEN, "expires_in": 300}).encode(),
                             [("Content-Type", "application/json")])
        if not self.authorized():
            return
        if path == "/v2/":
            return self.send(200, b"{}")
        prefix = "/v2/%s/" % opts.repo
        if not path.startswith(prefix):
            return self.error(404, "NAME_UNKNOWN", "repository name not known to registry")
        kind, _, ref = path[len(prefix):].partition("/")
        if kind == "manifests":
            with lock:
                found = manifests.get(ref)
            if found is None:
                return self.error(404, "MANIFEST_UNKNOWN", "manifest unknown")
            return self.send(200, blobs[found[1]], [("Content-Type", found[0]), ("Docker-Content-Digest", found[1])])
        if kind == "blobs" and ref in blobs:
            with lock:
                if state["flaky"] > 0:
                    state["flaky"] -= 1
                    return self.error(503, "UNAVAILABLE", "try again")
            body = blobs[ref]
            if opts.corrupt_layers and ref in layers:
                body = body[:-1] + bytes([body[-1] ^ 0xFF])
            start = 0
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes=") and rng.endswith("-"):
                start = int(rng[6:-1])
            with lock:
                drop = opts.drop_after and ref in layers and ref not in state["dropped"] and start == 0
                if drop:
                    state["dropped"].add(ref)
            if opts.endless_layers and ref in layers:
                return self.endless(ref)
            headers = [("Content-Type", "application/octet-stream"), ("Docker-Content-Digest", ref)]
            if start:
                headers.append(("Content-Range", "bytes %d-%d/%d" % (start, len(body) - 1, len(body))))
            part = body[start:]
            self.send_response(206 if start else 200)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(part)))
            self.end_headers()
            if self.command == "HEAD":
                return
            if drop:
                self.wfile.write(part[:opts.drop_after])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.wfile.write(part)
            return
        return self.error(404, "BLOB_UNKNOWN", "blob unknown to registry")


    def body(self):
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def upload(self, code, session, headers=()):
        """Logs the request and its answer; upload answers carry the session's location."""
        log.write("%s %s %s %d\n" % (self.command, self.path.split("?")[0], self.headers.get("Content-Range", "-"), code))
        if session is None:
            return self.send(code, b"", headers)
        location = "/v2/%s/blobs/uploads/%s" % (opts.repo, session)
        with lock:
            held = len(uploads.get(session, b""))
        self.send(code, b"", [("Location", location), ("Docker-Upload-UUID", session),
                              ("Range", "0-%d" % (held - 1 if held else 0))] + list(headers))

    def do_POST(self):
        path = self.path.split("?")[0]
        if not self.authorized():
            return
        if path != "/v2/%s/blobs/uploads/" % opts.repo:
            return self.error(404, "NAME_UNKNOWN", "repository name not known to registry")
        self.body()
        session = uuid.uuid4().hex
        with lock:
            uploads[session] = bytearray()
        return self.upload(202, session)

    def do_PATCH(self):
        session = self.path.split("?")[0].rsplit("/", 1)[1]
        data = self.body()
        if not self.authorized():
            return
        if opts.refuse_patch:
            return self.upload(405, None)
        with lock:
            held = uploads.get(session)
            if held is None:
                return self.upload(404, None)
            rng = self.headers.get("Content-Range", "%d-%d" % (len(held), len(held) + len(data) - 1))
            start, end = (int(x) for x in rng.split("-"))
            if start != len(held) or end - start + 1 != len(data):
                return self.upload(416, None)
            held += data
        return self.upload(202, session)

    def do_PUT(self):
        path, _, query = self.path.partition("?")
        data = self.body()
        if not self.authorized():
            return
        prefix = "/v2/%s/" % opts.repo
        kind, _, ref = path[len(prefix):].partition("/") if path.startswith(prefix) else ("", "", "")
        if kind == "manifests":
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            with lock:
                blobs[digest] = bytes(data)
                manifests[ref] = manifests[digest] = (self.headers.get("Content-Type"), digest)
            log.write("PUT %s %d\n" % (path, 201))
            return self.send(201, b"", [("Docker-Content-Digest", digest)])
        if kind != "blobs" or not ref.startswith("uploads/"):
            return self.error(404, "NAME_UNKNOWN", "repository name not known to registry")
        session = ref[len("uploads/"):]
        digest = dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("digest", "")
        with lock:
            held = uploads.pop(session, None)
            if held is None:
                return self.upload(404, None)
            held += data
            if digest != "sha256:" + hashlib.sha256(held).hexdigest():
                return self.upload(400, None)
            blobs[digest] = bytes(held)
        return self.upload(201, None, [("Docker-Content-Digest", digest)])


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(opts.portfile + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(opts.portfile + ".tmp", opts.portfile)
server.serve_forever()
