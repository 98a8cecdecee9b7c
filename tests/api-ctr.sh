#!/bin/bash
# containerd's v1 API as Debian's unmodified ctr sees it: version, namespaces (persisted
# across a restart), plugins, and events streamed to a subscriber.
source "$(dirname "$0")/lib.sh"
tap_plan 15

berthd_start api -- --plugin-dir "$BUILDDIR/tests/plugins/.libs" || true
out=$(bctr version 2>&1)
expect_match "ctr version reaches berthd" "Server:.*" "$(printf '%s' "$out" | tr '\n' ' ')"
expect_match "…and prints berth's version and a UUID" "Revision: berth.*UUID: [0-9a-f-]{36}" "$(printf '%s' "$out" | tr '\n' ' ')"
uuid=$(printf '%s\n' "$out" | sed -n 's/.*UUID: //p' | tail -1)

bctr events >"$TEST_TMP/events.out" 2>&1 &
EVENTS_PID=$!
sleep 0.5
check "ctr namespaces create a" bctr namespaces create a
check "ctr namespaces label a k=v" bctr namespaces label a k=v
expect_match "ctr namespaces ls shows a with its label" "^a +k=v" "$(bctr namespaces ls)"
out=$(bctr namespaces create a 2>&1) && not_ok "creating a twice fails" || expect_match "creating a twice fails: already exists" "already exists" "$out"
sleep 0.3
kill "$EVENTS_PID" 2>/dev/null; wait "$EVENTS_PID" 2>/dev/null
expect_match "ctr events saw /namespaces/create of a" ' a /namespaces/create \{"name":"a"\}' "$(cat "$TEST_TMP/events.out")"

# containerd's Go client reads its default namespace's labels on connecting (dockerd with
# "moby" on its first start): a namespace nobody created answers empty labels, not NOT_FOUND.
GET=/containerd.services.namespaces.v1.Namespaces/Get
expect_eq "Namespaces.Get of a namespace that does not exist answers (no labels)" "OK" \
  "$("$SRCDIR/tests/grpc-call.py" "$BERTH_SOCK" $GET 1=fresh-ns 2>&1)"
expect_eq "…without creating it" "" "$(bctr namespaces ls -q | grep -x fresh-ns)"

plugins=$(bctr plugins ls)
expect_match "ctr plugins ls shows a loaded plugin as ok" "io.berth.test.v1 +dep +linux/[a-z0-9]+ +ok" "$plugins"
expect_match "…and a failed one as error" "io.berth.test.v1 +init-error +linux/[a-z0-9]+ +error" "$plugins"
expect_match "ctr plugins ls -d shows why it failed" "test plugin refuses to start" "$(bctr plugins ls -d id==init-error)"

berthd_stop
berthd_start api -- --plugin-dir "$BUILDDIR/tests/plugins/.libs" || true
expect_match "after a restart namespace a and its label persist" "^a +k=v" "$(bctr namespaces ls)"
expect_eq "…and so does the server UUID" "$uuid" "$(bctr version 2>/dev/null | sed -n 's/.*UUID: //p' | tail -1)"
bctr namespaces rm a >/dev/null 2>&1
expect_none "ctr namespaces rm a removes it" "grep -x a" bctr namespaces ls -q
tests_done
