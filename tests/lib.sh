# tests/lib.sh — shared helpers for integration tests (sourced by tests/*.sh).
# TAP output, temp dirs cleaned on exit, and a real berthd on a private root/state/socket.
set -u

BUILDDIR=${BERTH_TOP_BUILDDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
SRCDIR=${BERTH_TOP_SRCDIR:-$BUILDDIR}
# berthd opens its modules (core/daemon/berth-modules.h) from the build tree.
export BERTH_MODULE_DIR=${BERTH_MODULE_DIR:-$BUILDDIR/core/.libs}
TAP_N=0
TAP_FAILED=0
TEST_TMP=$(mktemp -d /tmp/berth-test.XXXXXX)
BERTHD_PIDS=()
# Sanitizer builds: every process of the test (berthd, the shims, which detach and drop
# their stderr, the CLI) reports into files here, checked at exit.
if [ -n "${ASAN_OPTIONS:-}" ]; then
  export ASAN_OPTIONS="$ASAN_OPTIONS:log_path=$TEST_TMP/sanitizer"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$TEST_TMP/sanitizer"
fi
# Other helpers (registries, fakes) a test started in the background: stopped on exit.
BACKGROUND_PIDS=()

tap_plan () { echo "1..$1"; }
ok () { TAP_N=$((TAP_N + 1)); echo "ok $TAP_N - $*"; }
not_ok () { TAP_N=$((TAP_N + 1)); TAP_FAILED=$((TAP_FAILED + 1)); echo "not ok $TAP_N - $*"; }
skip () { TAP_N=$((TAP_N + 1)); echo "ok $TAP_N # SKIP $*"; }
diag () { printf '# %s\n' "$@"; }
# check DESCRIPTION COMMAND...: one TAP line from a command's exit status; output kept as diagnostics on failure
check () {
  local desc=$1; shift
  local out
  if out=$("$@" 2>&1); then ok "$desc"; else not_ok "$desc"; printf '%s\n' "$out" | sed 's/^/#   /' | head -40; fi
}
# expect_eq DESCRIPTION EXPECTED ACTUAL
expect_eq () {
  if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1"; diag "expected: $2" "actual:   $3"; fi
}
# expect_none DESCRIPTION FILTER COMMAND [ARGS...]: COMMAND succeeds and its output, piped
# through the shell pipeline FILTER ('' for none), is empty. Not expect_eq "" "$(…)": a
# client whose daemon has died prints nothing on stdout either (its error goes to stderr).
expect_none () {
  local desc=$1 filter=$2 out rc
  shift 2
  out=$("$@" 2>"$TEST_TMP/expect_none.err")
  rc=$?
  if [ "$rc" -ne 0 ]; then
    not_ok "$desc"
    diag "failed (exit $rc): $*"
    sed 's/^/#   /' "$TEST_TMP/expect_none.err" | head -20
    return
  fi
  [ -n "$filter" ] && out=$(printf '%s\n' "$out" | eval "$filter")
  expect_eq "$desc" "" "$out"
}
# expect_match DESCRIPTION REGEX TEXT
expect_match () {
  if printf '%s' "$3" | grep -Eq -- "$2"; then ok "$1"; else not_ok "$1"; diag "expected to match: $2" "actual:"; printf '%s\n' "$3" | sed 's/^/#   /' | head -40; fi
}

tests_cleanup () {
  local status=$? pid  # the script's own status (tests_done's), kept for the exit below
  for pid in "${BERTHD_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null && { for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done; kill -KILL "$pid" 2>/dev/null; }
  done
  for pid in "${BACKGROUND_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null
  done
  # Shims this test's daemons started (and their containers) outlive berthd by design:
  # stop them here, by pid.
  local shim
  for shim in $(pgrep -f "berth-shim $TEST_TMP" 2>/dev/null); do
    kill -KILL $(pgrep -P "$shim" 2>/dev/null) "$shim" 2>/dev/null
  done
  # Containers' mounts live under TEST_TMP too.
  grep " $TEST_TMP" /proc/self/mounts 2>/dev/null | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
  # A sanitizer report from any daemon this test ran fails the test (sanitizer builds).
  local report
  # The plugin scanner's reports are left out: test plugins crash it on purpose (that
  # is what it is for), and berthd reports those crashes as plugin errors.
  report=$(grep -l -E "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$TEST_TMP"/*/berthd.log 2>/dev/null
           grep -l -E "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$TEST_TMP"/sanitizer.* 2>/dev/null \
             | xargs -r grep -L "berth-plugin-scanner")
  if [ -n "$report" ]; then
    echo "Bail out! sanitizer report: $report"
    grep -h -A30 -E "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" $report | sed 's/^/# /' | head -80
    status=1
  fi
  rm -rf "$TEST_TMP"
  exit $status
}
trap tests_cleanup EXIT

# require_plugins NAME…: skips the whole test when configure left out one of these
# in-tree plugins (--disable-NAME). Call it before tap_plan.
require_plugins () {
  local p missing=""
  for p in "$@"; do
    case " ${BERTH_DISABLED_PLUGINS:-} " in *" $p "*) missing="$missing $p" ;; esac
  done
  [ -z "$missing" ] && return 0
  echo "1..0 # SKIP built without the plugin(s)$missing"
  exit 0
}

# plain_build_only: skips the whole test in the sanitizer build. For the outside suites
# (critest, containerd's suites, Docker Engine), which CI runs once, in the plain build,
# while the ASan build runs the project's own tests. Call it before tap_plan.
plain_build_only () {
  [ "${BERTH_SANITIZERS:-no}" = yes ] || return 0
  echo "1..0 # SKIP an outside suite: runs in the plain build"
  exit 0
}

tests_done () {
  echo "# $TAP_N tests, $TAP_FAILED failed"
  [ "$TAP_FAILED" -eq 0 ]
}

# ---- a real berthd on private dirs ----
# berthd_start [NAME] [-- extra berthd args]: starts berthd on $TEST_TMP/NAME/{root,state},
# every in-tree plugin, and waits for its socket. Sets BERTH_ROOT, BERTH_STATE,
# BERTH_SOCK, BERTHD_PID, BERTHD_LOG. Returns non-zero (log on stdout as TAP diagnostics)
# when it does not come up. --log-level is $BERTH_LOG_LEVEL (default debug); set it
# empty to pass none, so the config file's log-level applies.
berthd_start () {
  local name=${1:-d}
  [ $# -gt 0 ] && shift
  [ "${1:-}" = "--" ] && shift
  BERTH_ROOT=$TEST_TMP/$name/root
  BERTH_STATE=$TEST_TMP/$name/state
  BERTH_SOCK=$BERTH_STATE/berthd.sock
  BERTHD_LOG=$TEST_TMP/$name/berthd.log
  mkdir -p "$TEST_TMP/$name/libexec"
  local prog
  for prog in core/berth-plugin-scanner core/shim/berth-shim core/shim/berth-cri-log core/cri/berth-pause; do
    [ -x "$BUILDDIR/$prog" ] && ln -sf "$BUILDDIR/$prog" "$TEST_TMP/$name/libexec/"
  done
  # A socket left by a killed daemon would pass for the new one's.
  rm -f "$BERTH_SOCK"
  local args=() dir
  for dir in "$BUILDDIR"/plugins/*/*/.libs; do
    [ -d "$dir" ] && args+=(--plugin-dir "$dir")
  done
  [ -n "${BERTH_LOG_LEVEL-debug}" ] && args+=(--log-level "${BERTH_LOG_LEVEL-debug}")
  ${BERTHD_WRAPPER:-} "$BUILDDIR/core/berthd" --config /dev/null --root "$BERTH_ROOT" --state "$BERTH_STATE" \
    --address "$BERTH_SOCK" --libexec-dir "$TEST_TMP/$name/libexec" \
    "${args[@]}" "$@" >>"$BERTHD_LOG" 2>&1 &
  BERTHD_PID=$!
  BERTHD_PIDS+=("$BERTHD_PID")
  # Up to a minute while the daemon lives: sanitizer builds probing crashing test
  # plugins on a busy CI machine take many seconds.
  local i
  for i in $(seq 600); do
    [ -S "$BERTH_SOCK" ] && return 0
    kill -0 "$BERTHD_PID" 2>/dev/null || break
    sleep 0.1
  done
  diag "berthd did not come up; its log:"
  sed 's/^/#   /' "$BERTHD_LOG" | tail -40
  return 1
}

# berthd_stop [SIGNAL]: stops the last started berthd and waits for it (TERM by default).
berthd_stop () {
  kill "-${1:-TERM}" "$BERTHD_PID" 2>/dev/null
  wait "$BERTHD_PID" 2>/dev/null
  BERTHD_EXIT=$?
}

# tmux_wait SESSION REGEX [SECONDS]: waits until the session's screen matches (default 30 s,
# a loaded CI machine is slow to start a container); prints the screen either way.
tmux_wait () {
  local screen i
  for i in $(seq $((${3:-30} * 10))); do
    screen=$(tmux capture-pane -p -t "$1" 2>/dev/null)
    printf '%s' "$screen" | grep -Eq -- "$2" && break
    sleep 0.1
  done
  printf '%s\n' "$screen"
}

# tty_session COLS ROWS COMMAND KEYS DONE_REGEX [EXIT_KEYS]: runs COMMAND on a COLS×ROWS
# terminal (a tmux session of its own), waits for a shell prompt, types KEYS, waits until
# the screen matches DONE_REGEX, then types EXIT_KEYS if given and waits (up to 10 s) for
# COMMAND to end. The session is gone afterwards; prints the screen DONE_REGEX matched.
tty_session () {
  local session=berth-$$-$RANDOM screen
  tmux new-session -d -s "$session" -x "$1" -y "$2" "$3"
  tmux_wait "$session" "/ #" >/dev/null
  tmux send-keys -t "$session" "$4" Enter
  screen=$(tmux_wait "$session" "$5")
  if [ -n "${6:-}" ]; then
    tmux send-keys -t "$session" "$6" Enter
    for _ in $(seq 100); do tmux has-session -t "$session" 2>/dev/null || break; sleep 0.1; done
  fi
  tmux kill-session -t "$session" 2>/dev/null
  printf '%s\n' "$screen"
}

# ctr against the test daemon.
bctr () { ctr --address "$BERTH_SOCK" "$@"; }

# make_busybox_image OUT.tar [REF]: a one-layer busybox-static OCI archive, no network.
make_busybox_image () {
  python3 "$SRCDIR/tests/make-image.py" "$1" --busybox --name "${2:-docker.io/library/busybox:latest}" >/dev/null
}

# A TCP port on 127.0.0.1 that nothing listens on right now.
free_port () { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# http_get URL: the body on stdout; fails on a non-2xx answer or no answer.
http_get () {
  if command -v curl >/dev/null; then curl -sf --max-time 20 "$1"
  else python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=20).read().decode())' "$1"
  fi
}

# wait_port PORT: until something accepts on 127.0.0.1:PORT (10 s at most).
wait_port () {
  local i
  for i in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# registry_start NAME [htpasswd FILE] [tls CERT KEY] [accesslog]: Debian's docker-registry
# on a free loopback port with its storage under $TEST_TMP/NAME (its log, with requests
# when accesslog is given, in $TEST_TMP/NAME/registry.log). Sets REG (host:port).
registry_start () {
  local name=$1; shift
  local dir=$TEST_TMP/$name port access=true
  port=$(free_port)
  mkdir -p "$dir/storage"
  [[ " $* " = *" accesslog "* ]] && access=false
  {
    echo "version: 0.1"
    echo "log: {level: error, accesslog: {disabled: $access}}"
    echo "storage: {filesystem: {rootdirectory: $dir/storage}, delete: {enabled: true}}"
    echo "http:"
    echo "  addr: 127.0.0.1:$port"
    while [ $# -gt 0 ]; do
      case $1 in
        htpasswd) echo "auth: {htpasswd: {realm: berth-test, path: $2}}" >"$dir/auth.yml"; shift 2 ;;
        tls) echo "  tls: {certificate: $2, key: $3}"; shift 3 ;;
        accesslog) shift ;;
        *) echo "registry_start: unknown option $1" >&2; return 1 ;;
      esac
    done
    [ -f "$dir/auth.yml" ] && cat "$dir/auth.yml"
  } >"$dir/config.yml"
  docker-registry serve "$dir/config.yml" >>"$dir/registry.log" 2>&1 &
  BACKGROUND_PIDS+=("$!")
  REG=127.0.0.1:$port
  wait_port "$port" || { diag "docker-registry did not come up:"; sed 's/^/#   /' "$dir/registry.log"; return 1; }
}

# registry_put ARCHIVE REF [skopeo dest options…]: copies an OCI archive to a registry.
registry_put () {
  local archive=$1 ref=$2; shift 2
  skopeo copy --quiet "oci-archive:$archive" "docker://$ref" --dest-tls-verify=false "$@"
}
