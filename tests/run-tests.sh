#!/bin/bash
# Sets up, builds and runs the whole test suite; ends with "N passed, N failed, N skipped".
#   tests/run-tests.sh [BUILD_DIR [configure args...]]   (default _build)
# With BERTH_ASAN=1 it also builds _build-asan with -fsanitize=address,undefined and runs
# the suite there too (what CI does).
set -uo pipefail
cd "$(dirname "$0")/.."
tests/install-deps.sh || exit 1

# run_checks BUILD OUT [make args]: `make check` in BUILD, its results and failing logs.
run_checks () {
  local build=$1 out=$2; shift 2
  make -C "$build" -j2 check "$@" >"$build/$out" 2>&1
  local status=$?
  grep -E '^(PASS|FAIL|XFAIL|XPASS|ERROR|SKIP):' "$build/$out" | sed "s|^|[$build] |"
  if [ $status -ne 0 ]; then
    for log in $(grep -l -E '^(FAIL|ERROR|XPASS)' $(find "$build/tests" -name '*.log') 2>/dev/null); do
      echo "==== $log"; tail -60 "$log"
    done
    grep -q -E '^(PASS|FAIL|ERROR)' "$build/$out" || tail -40 "$build/$out"
  fi
  return $status
}

run_suite () {
  local build=$1; shift
  if ! tests/build.sh "$build" "$@"; then echo "build in $build failed"; return 2; fi
  find "$build/tests" \( -name '*.trs' -o -name '*.log' \) -delete 2>/dev/null
  run_checks "$build" check.out
}

# Concurrent churn (tests/stress.sh, `make check-stress`) in its short form: 4 clients,
# 15 s warm-up, 60 s measured (the README gives the full-length figures). Plain build
# only: under ASan the RSS and fd checks would measure the sanitizer's allocator and
# quarantine. Run through automake's driver, so its .trs is counted like the others.
run_stress () {
  STRESS_CLIENTS=4 STRESS_WARMUP=15 STRESS_SECONDS=60 run_checks "$1" stress.out TESTS=tests/stress.sh
}

count () { cat $(find "${BUILDS[@]}" -path '*/tests/*' -name '*.trs' 2>/dev/null) /dev/null | grep -c "^:test-result: $1" || true; }

status=0
BUILDS=("${1:-_build}")
run_suite "${1:-_build}" "${@:2}" || status=1
[ -f "${1:-_build}/Makefile" ] && { run_stress "${1:-_build}" || status=1; }
if [ "${BERTH_ASAN:-0}" = 1 ]; then
  BUILDS+=(_build-asan)
  run_suite _build-asan --enable-sanitizers || status=1
fi
passed=$(( $(count PASS) + $(count XFAIL) ))
failed=$(( $(count FAIL) + $(count ERROR) + $(count XPASS) ))
skipped=$(count SKIP)
[ $status -ne 0 ] && [ "$failed" -eq 0 ] && failed=1   # a build failed before any test ran
echo "$passed passed, $failed failed, $skipped skipped"
exit $status
