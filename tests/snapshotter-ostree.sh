#!/bin/bash
# The snapshotter conformance suite (tests/snapshotter-suite.sh) against ostree.
SNAPSHOTTER=ostree source "$(dirname "$0")/snapshotter-suite.sh"
