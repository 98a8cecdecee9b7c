#!/bin/bash
# Pulls through an HTTP proxy named by berthd's environment, as containerd reads it:
# HTTP_PROXY/HTTPS_PROXY per scheme, NO_PROXY, loopback always direct. The registry is
# named by a host no resolver knows (proxied.test), so only the proxy can reach it.
source "$(dirname "$0")/lib.sh"
tap_plan 10
"$SRCDIR/tests/install-deps.sh" >/dev/null 2>&1 # docker-registry, skopeo

make_busybox_image "$TEST_TMP/busybox.tar"
registry_start plain || true
PLAIN=$REG
check "skopeo copies busybox into the registry" registry_put "$TEST_TMP/busybox.tar" "$PLAIN/busybox:latest"

python3 "$SRCDIR/tests/forward-proxy.py" "$TEST_TMP/proxy.port" "$TEST_TMP/proxy.log" "$PLAIN" &
BACKGROUND_PIDS+=("$!")
for _ in $(seq 100); do [ -s "$TEST_TMP/proxy.port" ] && break; sleep 0.1; done
touch "$TEST_TMP/proxy.log"

printf '[registry."proxied.test"]\nplain-http=true\n[registry."direct.test"]\nplain-http=true\n' >"$TEST_TMP/berthd.conf"
export HTTP_PROXY="127.0.0.1:$(cat "$TEST_TMP/proxy.port")" NO_PROXY="direct.test, .example.org"
berthd_start proxy -- --config "$TEST_TMP/berthd.conf" || true
unset HTTP_PROXY NO_PROXY
BERTH="$BUILDDIR/core/cli/berth --address $BERTH_SOCK"
b () { timeout 120 $BERTH "$@"; }

check "berth pull of proxied.test/busybox through HTTP_PROXY (a scheme-less proxy URL)" b pull -q proxied.test/busybox:latest
expect_match "…the proxy saw absolute-URI requests for the registry" "^GET http://proxied.test/v2/" "$(cat "$TEST_TMP/proxy.log")"
expect_match "…the image is listed" "^proxied.test/busybox:latest " "$(bctr images ls)"
out=$(b pull -q direct.test/busybox:latest 2>&1) && out="pulled: $out"
expect_match "a host in NO_PROXY is reached directly: an unknown name fails, naming it" "^berth: .*direct.test" "$out"
expect_eq "…and the proxy saw nothing of it" 0 "$(grep -c "direct.test" "$TEST_TMP/proxy.log")"
log_lines=$(wc -l <"$TEST_TMP/proxy.log")
check "a loopback registry is pulled directly" b pull -q --plain-http "$PLAIN/busybox:latest"
expect_eq "…not through the proxy" "$log_lines" "$(wc -l <"$TEST_TMP/proxy.log")"
diag "the NO_PROXY host's error: $out"

# GIO's default resolver (libproxy, C++, GSettings) is for desktops; berthd reads its
# environment, and without a proxy there connects directly.
berthd_stop
berthd_start direct || true
BERTH="$BUILDDIR/core/cli/berth --address $BERTH_SOCK"
check "without a proxy in its environment berthd pulls from the loopback registry" b pull -q --plain-http "$PLAIN/busybox:latest"
expect_none "berthd mapped no desktop proxy modules, nor libsoup" "grep -E 'libproxy|libgiognomeproxy|libdconfsettings|libsoup'" \
  cat "/proc/$BERTHD_PID/maps"
tests_done
