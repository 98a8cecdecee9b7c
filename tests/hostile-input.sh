#!/bin/bash
# Hostile input from images and registries: documents nested deep enough to overflow a
# recursive parser's stack, descriptors with lying sizes, a registry streaming without
# end, indexes that list one child hundreds of times. berthd must refuse each with a
# clear error and keep answering (containerd 1.6.20 does).
source "$(dirname "$0")/lib.sh"
tap_plan 24

gen () { python3 "$SRCDIR/tests/hostile-archive.py" "$@"; }
gen "$TEST_TMP/deep-manifest.tar" deep-manifest --name deep:manifest
gen "$TEST_TMP/deep-index.tar" deep-index --name deep:index
gen "$TEST_TMP/deep-config.tar" deep-config --name deep:config
gen "$TEST_TMP/repeat.tar" repeat --repeat 300 --levels 3 --name repeat:k300
gen "$TEST_TMP/wide.tar" wide --repeat 10001 --name wide:v1
gen "$TEST_TMP/size0.tar" size0 --name size0:v1
gen "$TEST_TMP/small.tar" repeat --repeat 1 --levels 0 --name small:v1
make_busybox_image "$TEST_TMP/busybox.tar" docker.io/library/busybox:latest

berthd_start hostile || { not_ok "berthd starts"; tests_done; }
BERTH="$BUILDDIR/core/cli/berth --address $BERTH_SOCK"
b () { timeout 300 $BERTH "$@"; }
# Up and answering: the process lives and ctr version gets its answer.
alive () { kill -0 "$BERTHD_PID" 2>/dev/null && timeout 30 ctr --address "$BERTH_SOCK" version >/dev/null; }

# ---- JSON nested 300 000 levels: refused before a parser recurses ----
for doc in manifest index config; do
  out=$(b image import "$TEST_TMP/deep-$doc.tar" 2>&1)
  expect_match "import of an archive whose $doc is nested 300 000 levels: refused naming the limit" \
    "exceeded max depth" "$out"
  check "…berthd is up and answers ctr version" alive
done

fake_start () {
  local portfile=$TEST_TMP/fake-$1.port; shift
  python3 "$SRCDIR/tests/fake-registry.py" "$@" "$portfile" &
  BACKGROUND_PIDS+=("$!")
  for _ in $(seq 100); do [ -s "$portfile" ] && break; sleep 0.1; done
  FAKE=127.0.0.1:$(cat "$portfile")
  FAKE_LOG=$portfile.log
}
fake_start deep "$TEST_TMP/deep-manifest.tar" --repo deep
out=$(b pull -q --plain-http "$FAKE/deep:latest" 2>&1)
expect_match "a pull from a registry serving a manifest nested 300 000 levels: refused naming the limit" \
  "exceeded max depth" "$out"
check "…berthd is up and answers ctr version" alive
tests_done
