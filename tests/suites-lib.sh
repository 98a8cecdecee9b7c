# tests/suites-lib.sh — containerd 1.6.20's conformance suites (tests/go/suites), shared
# by tests/containerd-suites.sh (the in-tree plugins) and tests/plugin-sdk.sh (an
# out-of-tree snapshotter). Source it after lib.sh.

# Built offline from Debian's Go packages (golang-github-containerd-containerd-dev) in
# GOPATH mode; the binary and Go's build cache stay in the build dir for later runs.
SUITES_GODIR=$BUILDDIR/tests/go
SUITES_BIN=$SUITES_GODIR/containerd-suites.test

# suites_build: builds $SUITES_BIN when missing or older than its sources; on failure
# prints Go's output and returns non-zero. Two tests may build at once: each writes its
# own file and renames it into place.
suites_build () {
  if [ -x "$SUITES_BIN" ] && [ -z "$(find "$SRCDIR/tests/go/suites" -newer "$SUITES_BIN" -name '*.go')" ]; then
    return 0
  fi
  mkdir -p "$SUITES_GODIR/gopath/src" "$SUITES_GODIR/cache"
  ln -sfn "$SRCDIR/tests/go/suites" "$SUITES_GODIR/gopath/src/berth-suites"
  (cd "$SUITES_GODIR/gopath/src/berth-suites" &&
   GO111MODULE=off GOPATH=$SUITES_GODIR/gopath:/usr/share/gocode GOFLAGS= GOPROXY=off GOCACHE=$SUITES_GODIR/cache \
     go test -c -o "$SUITES_BIN.$$" . && mv "$SUITES_BIN.$$" "$SUITES_BIN")
}

# suites_run LOG ARGS…: runs the suites against $BERTH_SOCK in a mount namespace of their
# own (they mount snapshots themselves: no mount outlives them). -test.root: the suites'
# root-only checks (chown, mounts) run; -test.v prints each result.
suites_run () {
  local log=$1; shift
  mkdir -p "$TEST_TMP/go"
  TMPDIR=$TEST_TMP/go unshare --mount --propagation private \
    "$SUITES_BIN" -test.v -test.root -test.timeout 25m -berth.address "$BERTH_SOCK" "$@" >"$log" 2>&1
}

# suites_report LOG [KNOWN…]: every leaf test's result in LOG becomes a TAP line, numbered
# on from $TAP_N; a failure carries its own output; a KNOWN name fails as TODO. Updates
# TAP_N and TAP_FAILED.
suites_report () {
  local counts
  python3 - "$TAP_N" "$TEST_TMP/suites-counts" "$@" <<'PY'
import re, sys
n = int(sys.argv[1]); counts = sys.argv[2]
lines = open(sys.argv[3], errors="replace").read().splitlines()
known = set(sys.argv[4:])
results, order = {}, []
for i, line in enumerate(lines):
    m = re.match(r"^\s*--- (PASS|FAIL|SKIP): (\S+) \(", line)
    if m:
        if m.group(2) not in results:
            order.append(m.group(2))
        results[m.group(2)] = (m.group(1), i)
leaves = [t for t in order if not any(o.startswith(t + "/") for o in order)]
failed = 0
for name in leaves:
    verdict, i = results[name]
    n += 1
    if verdict == "PASS":
        print(f"ok {n} - {name}")
    elif verdict == "SKIP":
        print(f"ok {n} # SKIP {name}")
    else:
        todo = " # TODO known divergence (README)" if name in known else ""
        failed += 0 if todo else 1
        print(f"not ok {n} - {name}{todo}")
        ind = len(lines[i]) - len(lines[i].lstrip())
        for extra in lines[i + 1:i + 41]:
            if len(extra) - len(extra.lstrip()) <= ind:
                break
            print("#   " + extra)
if not leaves:
    n += 1; failed += 1
    print(f"not ok {n} - the suites ran")
    for extra in lines[-40:]:
        print("#   " + extra)
open(counts, "w").write(f"{n} {failed}\n")
PY
  read -r TAP_N counts <"$TEST_TMP/suites-counts"
  TAP_FAILED=$((TAP_FAILED + counts))
}
