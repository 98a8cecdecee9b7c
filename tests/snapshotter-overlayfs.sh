#!/bin/bash
# The snapshotter conformance suite (tests/snapshotter-suite.sh) against overlayfs.
SNAPSHOTTER=overlayfs source "$(dirname "$0")/snapshotter-suite.sh"
