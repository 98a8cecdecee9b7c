#!/bin/bash
# Builds berth out of tree: tests/build.sh [BUILD_DIR [configure args...]] (default _build).
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
BUILD=${1:-_build}
[ $# -gt 0 ] && shift
if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt configure ]; then autoreconf -fi >/dev/null; fi
mkdir -p "$BUILD"
cd "$BUILD"
# -Werror explicitly: CI holds the code to it whether or not it runs from a git checkout.
if [ ! -f Makefile ] || [ "$SRC/configure" -nt config.status ]; then "$SRC/configure" -q --enable-werror "$@"; fi
make -j"$(nproc)" >/dev/null
