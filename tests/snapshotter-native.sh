#!/bin/bash
# The snapshotter conformance suite (tests/snapshotter-suite.sh) against native.
SNAPSHOTTER=native source "$(dirname "$0")/snapshotter-suite.sh"
