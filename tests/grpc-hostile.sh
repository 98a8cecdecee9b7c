#!/bin/bash
# Runs tests/grpc-hostile.py against a real berthd.
source "$(dirname "$0")/lib.sh"
berthd_start hostile || { echo "1..1"; not_ok "berthd starts"; exit 1; }
/usr/bin/python3 "$SRCDIR/tests/grpc-hostile.py" "$BERTH_SOCK" "$BERTHD_PID"
