#!/bin/bash
# The unmodified critest (cri-tools v1.26.1, the CRI validation suite containerd and CRI-O
# run) against a private berthd: built offline from ../shared/conformance's tarball
# (tests/cri-tools-build.sh), its images stand-ins built here (tests/cri-images/) and served
# from a loopback docker-registry under their real names, which berthd reaches through
# [registry."HOST"] endpoint= mirrors. One TAP line per spec, from critest's JUnit report.
# Runs in a mount namespace of its own whose / is rshared, as the mount-propagation specs
# need (the host's / is private): berthd and critest both run in it.
if [ -z "${CRITEST_IN_NS:-}" ]; then
  CRITEST_IN_NS=1 exec unshare -m --propagation unchanged "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"
plain_build_only
mount --make-rshared /
"$SRCDIR/tests/install-deps.sh" >/dev/null 2>&1 # CNI plugins, docker-registry, skopeo, golang-go

CNI_BIN=/usr/lib/cni
BR=bcrt$((RANDOM % 10000))
if ! ip link add "$BR" type bridge 2>/dev/null; then
  echo "1..0 # SKIP this kernel (or container) cannot make bridges"
  exit 77
fi
ip link del "$BR"
TOOLS=$("$SRCDIR/tests/cri-tools-build.sh" 2>"$TEST_TMP/cri-tools-build.log")
case $? in
  0) ;;
  77) echo "1..0 # SKIP $(tail -1 "$TEST_TMP/cri-tools-build.log")"; exit 77 ;;
  *) echo "Bail out! building cri-tools failed:"; sed 's/^/# /' "$TEST_TMP/cri-tools-build.log" | tail -30; exit 1 ;;
esac

cleanup_network () {
  local rc=$?
  ip link del "$BR" 2>/dev/null
  (exit $rc)
  tests_cleanup
}
trap cleanup_network EXIT

NET=10.$((200 + RANDOM % 50)).$((RANDOM % 250))
mkdir -p "$TEST_TMP/net.d"
cat >"$TEST_TMP/net.d/10-critest.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "berth-critest-$BR",
  "plugins": [
    {"type": "bridge", "bridge": "$BR", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$NET.0/24"}]], "dataDir": "$TEST_TMP/ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON

# ---- the stand-in images, in a loopback registry that berthd takes for the real hosts ----
IMAGES=$BUILDDIR/tests/cri-images
"$SRCDIR/tests/cri-images/build.sh" "$IMAGES" >"$TEST_TMP/images.log" 2>&1 ||
  { echo "Bail out! building the stand-in images failed:"; sed 's/^/# /' "$TEST_TMP/images.log" | tail -20; exit 1; }
registry_start critest || { echo "Bail out! no docker-registry"; exit 1; }
pushed=0
while read -r archive ref; do
  registry_put "$IMAGES/$archive.tar" "$REG/${ref#*/}" && pushed=$((pushed + 1))
done <"$IMAGES/images"
cat >"$TEST_TMP/berthd.conf" <<CONF
[registry."gcr.io"]
endpoint=http://$REG

[registry."registry.k8s.io"]
endpoint=http://$REG

[cri]
cni-conf-dir=$TEST_TMP/net.d
cni-bin-dir=$CNI_BIN
CONF
export BERTH_DATADIR=$SRCDIR/data
BERTH_LOG_LEVEL=${BERTH_LOG_LEVEL-info} berthd_start critest -- --config "$TEST_TMP/berthd.conf" ||
  { echo "Bail out! berthd did not start"; exit 1; }

# ---- critest ----
# Skipped, each for a reason (README, "critest"):
# - the image pulled by digest: critest names a fixed upstream digest no stand-in can have.
# - MaskedPaths: the stand-in busybox (Debian's busybox-static) is built with
#   FEATURE_SH_STANDALONE, so its sh runs `ls` as a built-in applet without exec'ing the
#   masked /bin/ls; the mask itself is in place (ReadonlyPaths, same mechanism, passes).
# - SELinux and AppArmor enforcement: this host has neither enabled (critest skips them itself).
# - the benchmarks: tests/bench, not CI (critest's -benchmark mode only).
SKIP='public image with digest should be pulled and removed'
SKIP+='|runtime should support MaskedPaths'
mkdir -p "$TEST_TMP/report"
SECONDS=0
timeout 1200 "$TOOLS/critest" -runtime-endpoint "unix://$BERTH_SOCK" -image-endpoint "unix://$BERTH_SOCK" \
  -ginkgo.skip "$SKIP" ${CRITEST_FOCUS:+-ginkgo.focus "$CRITEST_FOCUS"} -ginkgo.no-color -ginkgo.junit-report "$TEST_TMP/report/junit.xml" \
  >"$TEST_TMP/critest.log" 2>&1
rc=$?
diag "critest exited with $rc after ${SECONDS}s"
[ -n "${CRITEST_KEEP:-}" ] && cp -r "$TEST_TMP/critest.log" "$TEST_TMP/report" "$BERTHD_LOG" "$CRITEST_KEEP/" 2>/dev/null
# One TAP line per spec from the JUnit report.
expect_eq "every stand-in image is in the registry" "$(wc -l <"$IMAGES/images")" "$pushed"
python3 - "$TEST_TMP/report" "$TAP_N" >"$TEST_TMP/tap" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
n = int(sys.argv[2])
for path in sorted(glob.glob(sys.argv[1] + "/*.xml")):
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("name", "").replace("#", "")
        if name.startswith("[BeforeSuite]") or name.startswith("[AfterSuite]") or name.startswith("[SynchronizedBefore"):
            if case.find("failure") is None and case.find("error") is None:
                continue
        n += 1
        failure = case.find("failure") if case.find("failure") is not None else case.find("error")
        if case.find("skipped") is not None:
            print(f"ok {n} # SKIP {name}")
        elif failure is not None:
            print(f"not ok {n} - {name}")
            for line in (failure.get("message", "") + "\n" + (failure.text or "")).strip().splitlines()[:15]:
                print(f"#   {line}")
        else:
            print(f"ok {n} - {name}")
PY
cat "$TEST_TMP/tap"
TAP_N=$((TAP_N + $(grep -c '^\(not \)\?ok ' "$TEST_TMP/tap")))
TAP_FAILED=$((TAP_FAILED + $(grep -c '^not ok ' "$TEST_TMP/tap")))
if ! grep -q '^ok ' "$TEST_TMP/tap"; then
  not_ok "critest ran specs (its log's end:)"
  tail -30 "$TEST_TMP/critest.log" | sed 's/^/#   /'
fi
if kill -0 "$BERTHD_PID" 2>/dev/null; then
  ok "berthd outlived critest"
else
  not_ok "berthd outlived critest (its log's end:)"
  tail -40 "$BERTHD_LOG" | sed 's/^/#   /'
fi
tap_plan "$TAP_N" # at the end: the number of specs is critest's
tests_done
