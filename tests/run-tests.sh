#!/bin/bash
# Sets up, builds and runs the whole test suite; ends with "N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
tests/install-deps.sh || exit 1
tests/build.sh || exit 1
rm -f tests/*.trs tests/*.log tests/*/*.trs tests/*/*.log
make -j2 check "$@" >tests/check.out 2>&1
status=$?
grep -E '^(PASS|FAIL|XFAIL|XPASS|ERROR|SKIP):' tests/check.out
if [ $status -ne 0 ]; then
  for log in $(grep -l -E '^(FAIL|ERROR|XPASS)' $(find tests -name '*.log' ! -name check.out) 2>/dev/null); do
    echo "==== $log"; tail -60 "$log"
  done
fi
count () { cat $(find tests -name '*.trs') 2>/dev/null | grep -c "^:test-result: $1" || true; }
passed=$(( $(count PASS) + $(count XFAIL) ))
failed=$(( $(count FAIL) + $(count ERROR) + $(count XPASS) ))
skipped=$(count SKIP)
[ $status -ne 0 ] && [ "$failed" -eq 0 ] && failed=1   # the build of the tests itself failed
echo "$passed passed, $failed failed, $skipped skipped"
exit $status
