#!/bin/bash
# Builds crictl and critest (cri-tools v1.26.1) offline from the vendored source tarball,
# once: the binaries are cached in $BERTH_TOP_BUILDDIR/tests/go/cri-tools/ and rebuilt only
# when the tarball changes. Prints the directory holding them; exits 77 (with the reason on
# stderr) when the tarball is not there.
#   CRI_TOOLS_TARBALL  overrides the tarball's path
#                      (default: $BERTH_TOP_SRCDIR/../shared/conformance/cri-tools-1.26.1.tar.xz)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
SRC=${BERTH_TOP_SRCDIR:-$here}
BUILD=${BERTH_TOP_BUILDDIR:-$here}
TARBALL=${CRI_TOOLS_TARBALL:-$SRC/../shared/conformance/cri-tools-1.26.1.tar.xz}
VERSION=1.26.1
if [ ! -f "$TARBALL" ]; then
  echo "cri-tools source not found at $TARBALL (set CRI_TOOLS_TARBALL)" >&2
  exit 77
fi
if ! command -v go >/dev/null; then
  echo "no go compiler (Debian golang-go)" >&2
  exit 77
fi
OUT=$BUILD/tests/go/cri-tools
stamp="$(stat -c '%s %Y' "$TARBALL") $VERSION"
mkdir -p "$OUT"
exec 9>"$OUT/.lock"
flock 9 # two runs in one build dir build once
if [ -x "$OUT/crictl" ] && [ -x "$OUT/critest" ] && [ "$(cat "$OUT/.stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "$OUT"
  exit 0
fi
rm -rf "$OUT/src" "$OUT/crictl" "$OUT/critest"
mkdir -p "$OUT/src"
tar -xJf "$TARBALL" -C "$OUT/src"
cd "$OUT/src"/cri-tools-*
# As the project's Makefile builds them (static, version stamped), offline from vendor/.
export GO111MODULE=on GOFLAGS=-mod=vendor GOPROXY=off CGO_ENABLED=0 GOCACHE=$OUT/gocache
ldflags="-X github.com/kubernetes-sigs/cri-tools/pkg/version.Version=$VERSION"
go build -trimpath -ldflags "$ldflags" -o "$OUT/crictl" ./cmd/crictl >&2
go test -c -trimpath -ldflags "$ldflags" -o "$OUT/critest" ./cmd/critest >&2
cd "$OUT"
rm -rf "$OUT/src" "$OUT/gocache" # ~450 MB: only the two binaries are kept
echo "$stamp" >"$OUT/.stamp"
echo "$OUT"
