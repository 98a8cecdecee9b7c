#!/bin/bash
# containerd 1.6.20's own conformance suites against berthd: snapshots/testsuite
# (SnapshotterSuite) on every snapshotter and content/testsuite (ContentSuite and the
# cross-namespace one) on the content store, through containerd's gRPC proxies
# (snapshots/proxy, content/proxy) — tests/go/suites. Each suite test is one TAP line.
# The suites run their tests in parallel and mount snapshots themselves: the Go program
# runs in a mount namespace of its own, so no mount outlives it.
source "$(dirname "$0")/lib.sh"
plain_build_only
require_plugins local overlayfs native ostree

# Built offline from Debian's Go packages (golang-github-containerd-containerd-dev) in
# GOPATH mode; the binary and Go's build cache stay in the build dir for later runs.
GODIR=$BUILDDIR/tests/go
BIN=$GODIR/containerd-suites.test
build_suites () {
  mkdir -p "$GODIR/gopath/src" "$GODIR/cache"
  ln -sfn "$SRCDIR/tests/go/suites" "$GODIR/gopath/src/berth-suites"
  (cd "$GODIR/gopath/src/berth-suites" &&
   GO111MODULE=off GOPATH=$GODIR/gopath:/usr/share/gocode GOFLAGS= GOPROXY=off GOCACHE=$GODIR/cache \
     go test -c -o "$BIN.new" . && mv "$BIN.new" "$BIN")
}
if [ ! -x "$BIN" ] || [ -n "$(find "$SRCDIR/tests/go/suites" -newer "$BIN" -name '*.go')" ]; then
  if ! out=$(build_suites 2>&1); then
    tap_plan 1; not_ok "building the suites' Go program"; printf '%s\n' "$out" | sed 's/^/#   /' | head -40
    exit 1
  fi
fi

# ostree keeps file-level dedup by hard links: see README, "containerd's suites".
declare -A KNOWN=()

berthd_start suites || { tap_plan 1; not_ok "berthd starts"; exit 1; }
mkdir -p "$TEST_TMP/go"
# -test.root: the suites' root-only checks (chown, mounts) run; -test.v prints each result.
TMPDIR=$TEST_TMP/go unshare --mount --propagation private \
  "$BIN" -test.v -test.root -test.timeout 25m -berth.address "$BERTH_SOCK" >"$TEST_TMP/go.log" 2>&1
status=$?
# Every leaf test's result becomes a TAP line; a failure carries its own output.
python3 - "$TEST_TMP/go.log" "${!KNOWN[@]}" <<'PY'
import re, sys
lines = open(sys.argv[1], errors="replace").read().splitlines()
known = set(sys.argv[2:])
results, order = {}, []
for i, line in enumerate(lines):
    m = re.match(r"^\s*--- (PASS|FAIL|SKIP): (\S+) \(", line)
    if m:
        if m.group(2) not in results:
            order.append(m.group(2))
        results[m.group(2)] = (m.group(1), i)
leaves = [n for n in order if not any(o.startswith(n + "/") for o in order)]
n = failed = 0
for name in leaves:
    verdict, i = results[name]
    n += 1
    if verdict == "PASS":
        print(f"ok {n} - {name}")
    elif verdict == "SKIP":
        print(f"ok {n} # SKIP {name}")
    else:
        todo = " # TODO known ostree divergence (README)" if name in known else ""
        failed += 0 if todo else 1
        print(f"not ok {n} - {name}{todo}")
        ind = len(lines[i]) - len(lines[i].lstrip())
        for extra in lines[i + 1:i + 41]:
            if len(extra) - len(extra.lstrip()) <= ind:
                break
            print("#   " + extra)
if n == 0:
    n = 1
    print("not ok 1 - the suites ran")
    for extra in lines[-40:]:
        print("#   " + extra)
print(f"1..{n}")
PY
echo "# go test exited $status"
