#!/bin/bash
# containerd 1.6's Go client library (Debian's golang-github-containerd-containerd-dev)
# against a private berthd: tests/go/client/client_test.go, built offline in GOPATH mode,
# covers what Docker, nerdctl, buildkit and k3s do through it (a fresh namespace, pull
# with unpack from a loopback docker-registry, import/export, containers and tasks with
# cio, exec, pause, events, leases, content resume, a Docker-style task). Each Go subtest
# is one TAP line. The test binary is cached in the build dir.
source "$(dirname "$0")/lib.sh"
require_plugins local walking overlayfs oci
plain_build_only
"$SRCDIR/tests/install-deps.sh" >/dev/null 2>&1 # golang, the containerd sources, docker-registry, skopeo

# ---- build (cached: rebuilt when the source changes) ----
GO_DIR=$BUILDDIR/tests/go/client
BIN=$GO_DIR/client.test
SRC=$SRCDIR/tests/go/client/client_test.go
if [ ! -x "$BIN" ] || [ "$SRC" -nt "$BIN" ]; then
  pkg=$GO_DIR/gopath/src/berth-go-client
  mkdir -p "$pkg"
  cp "$SRC" "$pkg/"
  # Go's build cache is the one tests/containerd-suites.sh uses: both compile containerd's
  # packages from /usr/share/gocode, so whichever runs second reuses the other's work.
  mkdir -p "$BUILDDIR/tests/go/cache"
  if ! out=$(cd "$pkg" && GO111MODULE=off GOPATH="$GO_DIR/gopath:/usr/share/gocode" GOFLAGS= GOPROXY=off \
               GOCACHE="$BUILDDIR/tests/go/cache" go test -c -o "$BIN.tmp" . 2>&1); then
    tap_plan 1
    not_ok "the Go client test program builds"
    printf '%s\n' "$out" | sed 's/^/#   /' | head -40
    exit 1
  fi
  mv "$BIN.tmp" "$BIN"
fi

# ---- a registry with busybox, a berthd ----
make_busybox_image "$TEST_TMP/busybox.tar"
registry_start reg || true
registry_put "$TEST_TMP/busybox.tar" "$REG/busybox:latest" >/dev/null 2>&1 || diag "skopeo could not fill the registry"
berthd_start go || true
mkdir -p "$TEST_TMP/scratch"

# ---- run; TAP from go test -v's "--- PASS/FAIL/SKIP: Name (…)" lines ----
BERTH_SOCK=$BERTH_SOCK BERTH_REGISTRY=$REG BERTH_IMAGE_TAR=$TEST_TMP/busybox.tar BERTH_TMP=$TEST_TMP/scratch \
  timeout 900 "$BIN" -test.v -test.count=1 -test.timeout 14m >"$TEST_TMP/go.out" 2>&1
status=$?
# Leaves only: a test with subtests passes or fails with them.
results=$(sed -nE 's/^ *--- (PASS|FAIL|SKIP): ([^ ]+) .*/\1 \2/p' "$TEST_TMP/go.out")
names=$(printf '%s\n' "$results" | awk '{print $2}')
leaves=()
while read -r result name; do
  [ -z "$name" ] && continue
  printf '%s\n' "$names" | grep -q -F -- "$name/" && continue
  leaves+=("$result $name")
done <<<"$results"
tap_plan $((${#leaves[@]} + 1))
for leaf in "${leaves[@]}"; do
  result=${leaf%% *} name=${leaf#* }
  case $result in
    PASS) ok "$name" ;;
    SKIP) skip "$name" ;;
    *) not_ok "$name"
       # -v streams a test's log lines right after its "=== RUN" line.
       awk -v n="=== RUN   $name" '$0 == n { on = 1; next } on && /^(=== |--- | *--- )/ { exit } on' "$TEST_TMP/go.out" \
         | head -20 | sed 's/^/#   /' ;;
  esac
done
if [ $status -eq 0 ]; then ok "the Go client test program exits 0"; else
  not_ok "the Go client test program exits 0 (status $status)"
  grep -E -e "--- FAIL|_test.go:|panic" "$TEST_TMP/go.out" | head -20 | sed 's/^/#   /'; tail -5 "$TEST_TMP/go.out" | sed 's/^/#   /'; fi
tests_done
