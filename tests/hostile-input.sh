#!/bin/bash
# Hostile input from images and registries: documents nested deep enough to overflow a
# recursive parser's stack, descriptors with lying sizes, a registry streaming without
# end, indexes that list one child hundreds of times. berthd must refuse each with a
# clear error and keep answering (containerd 1.6.20 does).
source "$(dirname "$0")/lib.sh"
require_plugins local walking overlayfs oci
tap_plan 27

gen () { python3 "$SRCDIR/tests/hostile-archive.py" "$@"; }
gen "$TEST_TMP/deep-manifest.tar" deep-manifest --name deep:manifest
gen "$TEST_TMP/deep-index.tar" deep-index --name deep:index
gen "$TEST_TMP/deep-config.tar" deep-config --name deep:config
gen "$TEST_TMP/repeat.tar" repeat --repeat 300 --levels 3 --name repeat:k300
gen "$TEST_TMP/wide.tar" wide --repeat 10001 --name wide:v1
gen "$TEST_TMP/size0.tar" size0 --name size0:v1
gen "$TEST_TMP/small.tar" repeat --repeat 1 --levels 0 --name small:v1
make_busybox_image "$TEST_TMP/busybox.tar" docker.io/library/busybox:latest

# Every blob here but busybox's layer (1 MB) is under max-blob-size.
printf '[berthd]\nmax-blob-size=500000\n' >"$TEST_TMP/berthd.conf"
berthd_start hostile -- --config "$TEST_TMP/berthd.conf" || { not_ok "berthd starts"; tests_done; }
BERTH="$BUILDDIR/core/cli/berth --address $BERTH_SOCK"
b () { timeout 300 $BERTH "$@"; }
# Up and answering: the process lives and ctr version gets its answer.
alive () { kill -0 "$BERTHD_PID" 2>/dev/null && timeout 30 ctr --address "$BERTH_SOCK" version >/dev/null; }

# ---- JSON nested 300 000 levels: refused before a parser recurses ----
for doc in manifest index config; do
  out=$(b image import "$TEST_TMP/deep-$doc.tar" 2>&1)
  expect_match "import of an archive whose $doc is nested 300 000 levels: refused naming the limit" \
    "exceeded max depth" "$out"
  check "…berthd is up and answers ctr version" alive
done

# A registry without a trace of each request is no witness: fake_start logs them.
fake_start () {
  local portfile=$TEST_TMP/fake-$1.port; shift
  python3 "$SRCDIR/tests/fake-registry.py" "$@" "$portfile" &
  BACKGROUND_PIDS+=("$!")
  for _ in $(seq 100); do [ -s "$portfile" ] && break; sleep 0.1; done
  FAKE=127.0.0.1:$(cat "$portfile")
  FAKE_LOG=$portfile.log
}
fake_start deep "$TEST_TMP/deep-manifest.tar" --repo deep
out=$(b pull -q --plain-http "$FAKE/deep:latest" 2>&1)
expect_match "a pull from a registry serving a manifest nested 300 000 levels: refused naming the limit" \
  "exceeded max depth" "$out"
check "…berthd is up and answers ctr version" alive

# ---- sizes: known before the fetch, and a bound on it ----
fake_start size0 "$TEST_TMP/size0.tar" --repo size0 --endless-layers
layer0=$(python3 -c 'import json,sys,tarfile; t=tarfile.open(sys.argv[1]); i=json.load(t.extractfile("index.json")); m=json.load(t.extractfile("blobs/sha256/"+i["manifests"][0]["digest"][7:])); print(m["layers"][0]["digest"])' "$TEST_TMP/size0.tar")
out=$(b pull -q --plain-http "$FAKE/size0:latest" 2>&1)
expect_match "a layer descriptor declaring size 0: refused" "declares a size of 0 bytes" "$out"
expect_eq "…before any byte of it is fetched (the registry would stream without end)" "" \
  "$(grep -F "$layer0" "$FAKE_LOG")"
check "…berthd is up and answers ctr version" alive
fake_start endless "$TEST_TMP/small.tar" --repo endless --endless-layers
out=$(b pull -q --plain-http "$FAKE/endless:latest" 2>&1)
expect_match "a registry streaming a layer without end: the pull stops at the declared size" \
  "sent more than its [0-9]+ bytes" "$out"
sent=$(awk '$1 == "sent" { print $3 }' "$FAKE_LOG")
check "…and hangs up: the registry got to send $sent bytes (under 64 MiB)" test "${sent:-0}" -gt 0 -a "${sent:-0}" -lt 67108864
expect_none "…nothing of it is left as an ingest" "tail -n +2" bctr content active
fake_start big "$TEST_TMP/busybox.tar" --repo big
out=$(b pull -q --plain-http "$FAKE/big:latest" 2>&1)
expect_match "a 1 MB layer over [berthd] max-blob-size=500000: refused naming the limit" \
  "over the \[berthd\] max-blob-size of 500000 bytes" "$out"
expect_eq "…before any byte of it is fetched" "" "$(grep "GET /v2/big/blobs/" "$FAKE_LOG" | grep -v "$(python3 -c 'import json,sys,tarfile; t=tarfile.open(sys.argv[1]); i=json.load(t.extractfile("index.json")); m=json.load(t.extractfile("blobs/sha256/"+i["manifests"][0]["digest"][7:])); print(m["config"]["digest"])' "$TEST_TMP/busybox.tar")")"

# ---- indexes repeating a child: each document is walked once ----
out=$(b image import "$TEST_TMP/repeat.tar" 2>&1)
expect_match "import of 3 nested indexes each listing the next 300 times (300³ paths): done" "repeat:k300" "$out"
check "…berthd is up and answers ctr version" alive
out=$(b image import "$TEST_TMP/wide.tar" 2>&1)
expect_match "an index listing 10001 manifests: refused naming the limit" "over the limit of 10000" "$out"
check "…berthd is up and answers ctr version" alive

# ---- a 10 kB snapshot key: LMDB's key limit is the client's error, not UNKNOWN ----
key=$(head -c 10000 /dev/zero | tr '\0' k)
out=$(bctr snapshots prepare "$key" 2>&1)
expect_match "ctr snapshots prepare with a 10 kB key: INVALID_ARGUMENT naming the limit" \
  "over the limit of [0-9]+ bytes: invalid argument" "$out"
check "…berthd is up and answers ctr version" alive

# ---- implicit parents: a layer adding home/u/f without home/u/ keeps the lower's dir ----
python3 - "$TEST_TMP" <<'PY'
import io, sys, tarfile
def tar(path, entries):
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as t:
        for name, mode, uid, data in entries:
            info = tarfile.TarInfo(name)
            info.mode, info.uid, info.gid, info.mtime = mode, uid, uid, 1700000000
            if data is None:
                info.type = tarfile.DIRTYPE
                t.addfile(info)
            else:
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
tar(sys.argv[1] + "/lower.tar", [("home", 0o755, 0, None), ("home/u", 0o700, 1000, None),
                                 ("home/u/old", 0o600, 1000, b"old\n"), ("data", 0o1777, 0, None)])
tar(sys.argv[1] + "/upper.tar", [("home/u/new", 0o600, 1000, b"new\n"), ("data/x/f", 0o644, 0, b"f\n")])
PY
python3 "$SRCDIR/tests/make-image.py" "$TEST_TMP/parents.tar" --busybox --layer-tar "$TEST_TMP/lower.tar" \
  --layer-tar "$TEST_TMP/upper.tar" --name docker.io/library/parents:v1 >/dev/null
bctr images import "$TEST_TMP/parents.tar" >/dev/null
out=$(timeout 60 ctr --address "$BERTH_SOCK" run --rm docker.io/library/parents:v1 hostile-parents \
  stat -c '%n %a %u:%g' /home/u /data 2>&1)
expect_eq "a layer adding home/u/new without home/u/ keeps the lower layer's 0700 1000:1000 dir" \
  "/home/u 700 1000:1000" "$(printf '%s\n' "$out" | grep '^/home/u ')"
expect_eq "…and /data stays 1777" "/data 1777 0:0" "$(printf '%s\n' "$out" | grep '^/data ')"

# ---- a task with many processes: ListPids reads all of runc ps (not ~500 bytes) ----
IMAGE=docker.io/library/busybox:latest
bctr images import "$TEST_TMP/busybox.tar" >/dev/null
bctr run -d $IMAGE hostile-many sh -c 'for i in $(seq 100); do sleep 600 & done; wait' >/dev/null
n=0
for _ in $(seq 100); do
  n=$(bctr tasks ps hostile-many 2>/dev/null | tail -n +2 | wc -l)
  [ "$n" -ge 101 ] && break
  sleep 0.2
done
expect_eq "ctr tasks ps of a container running 101 processes lists them all" 101 "$n"
pids=$(bctr tasks ps hostile-many | awk 'NR > 1 { print $1 }' | sort -n | tr '\n' ' ')
state_pids=$(for p in $pids; do [ -d "/proc/$p" ] && echo "$p"; done | wc -l)
expect_eq "…every one a live pid, none cut in half" 101 "$state_pids"
bctr tasks kill -s SIGKILL hostile-many >/dev/null 2>&1
for _ in $(seq 100); do bctr tasks ls | grep -q "hostile-many.*RUNNING" || break; sleep 0.2; done
check "…and it goes away" bctr tasks delete hostile-many
bctr containers rm hostile-many >/dev/null 2>&1

tests_done
