#!/bin/bash
# Builds berth in the source tree (configure once, then make).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x configure ] || [ configure.ac -nt configure ]; then autoreconf -fi >/dev/null; fi
if [ ! -f Makefile ] || [ configure -nt config.status ]; then ./configure -q "$@"; fi
make -j"$(nproc)" >/dev/null
