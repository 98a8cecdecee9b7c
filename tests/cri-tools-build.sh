#!/bin/bash
# tests/cri-tools-build.sh OUTDIR: builds crictl and critest (cri-tools v1.26.1, the
# unmodified sources beside the project: ../shared/conformance/cri-tools-1.26.1.tar.xz)
# offline with Debian's Go, into OUTDIR/crictl and OUTDIR/critest. Prints nothing; a
# second call with both binaries there and newer than the tarball does nothing.
set -euo pipefail
OUT=${1:?usage: tests/cri-tools-build.sh OUTDIR}
HERE=$(cd "$(dirname "$0")" && pwd)
TARBALL=${CRI_TOOLS_TARBALL:-}
for t in "$TARBALL" "${BERTH_TOP_SRCDIR:-$HERE/..}/../shared/conformance/cri-tools-1.26.1.tar.xz" \
         "$HERE/../../shared/conformance/cri-tools-1.26.1.tar.xz" /work/shared/conformance/cri-tools-1.26.1.tar.xz; do
  [ -n "$t" ] && [ -f "$t" ] && { TARBALL=$t; break; }
done
[ -f "$TARBALL" ] || { echo "cri-tools-build.sh: cri-tools-1.26.1.tar.xz not found" >&2; exit 1; }
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
if [ "$OUT/crictl" -nt "$TARBALL" ] && [ "$OUT/critest" -nt "$TARBALL" ]; then exit 0; fi
WORK=$(mktemp -d "$OUT/src.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
tar -xJf "$TARBALL" -C "$WORK"
cd "$WORK/cri-tools-1.26.1"
export GOFLAGS=-mod=vendor GOPROXY=off GO111MODULE=on GOPATH=$WORK/gopath
LDFLAGS="-X github.com/kubernetes-sigs/cri-tools/pkg/version.Version=1.26.1"
go build -trimpath -ldflags "$LDFLAGS" -o "$WORK/crictl" ./cmd/crictl >/dev/null
go test -c -trimpath -ldflags "$LDFLAGS" -o "$WORK/critest" ./cmd/critest >/dev/null
mv "$WORK/crictl" "$WORK/critest" "$OUT/"
