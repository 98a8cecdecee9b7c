#!/bin/bash
# Crash consistency: berthd killed with SIGKILL at varied moments while it ingests
# content, imports and unpacks images, commits snapshots, creates and starts containers
# and collects garbage. After every restart:
#   - the daemon comes up (its LMDB metadata opens) and answers;
#   - every blob `ctr content ls` lists reads back with the digest it is listed under,
#     and every image is complete (`ctr images check`);
#   - after a GC and a snapshotter Cleanup, snapshot directories and snapshot records
#     match one to one (no dir without a record, no record without its dir);
#   - containers that were running are still running.
# CRASH_ITERATIONS (default 30) bounds the loop; the whole test stays under ~2 minutes.
source "$(dirname "$0")/lib.sh"
ITERATIONS=${CRASH_ITERATIONS:-30}
tap_plan $((ITERATIONS + 3))
"$SRCDIR/tests/install-deps.sh" >/dev/null 2>&1

IMAGE=docker.io/library/busybox:latest
make_busybox_image "$TEST_TMP/busybox.tar"
for n in 1 2; do
  mkdir -p "$TEST_TMP/layer$n/data"
  head -c $((3 * 1024 * 1024)) /dev/urandom >"$TEST_TMP/layer$n/data/blob"
  for f in $(seq 40); do echo "$n $f" >"$TEST_TMP/layer$n/data/f$f"; done
  python3 "$SRCDIR/tests/make-image.py" "$TEST_TMP/img$n.tar" --busybox --layer "$TEST_TMP/layer$n" \
    --name "docker.io/library/crash$n:latest" >/dev/null
done
BERTH="$BUILDDIR/core/cli/berth"
GRPC_CALL="/usr/bin/python3 $SRCDIR/tests/grpc-call.py"

berthd_start crash || true
bctr images import "$TEST_TMP/busybox.tar" >/dev/null
check "a long-running container starts before the crashes" bctr run -d $IMAGE keep sleep 100000
RUNNING=(keep)
SNAPDIR=$(ls -d "$BERTH_ROOT"/*overlayfs*/snapshots 2>/dev/null | head -1)
check "the overlayfs snapshotter keeps its snapshots under the root ($SNAPDIR)" test -d "$SNAPDIR"

# One operation in the background, chosen by the iteration.
operation () {
  local i=$1
  case $((i % 6)) in
    0) ( bctr images import "$TEST_TMP/img$(( (i / 6) % 2 + 1 )).tar" ) ;;
    1) ( head -c $((6 * 1024 * 1024)) /dev/urandom | bctr content ingest "crash-ingest-$i" ) ;;
    2) (
         parent=$(bctr snapshots ls | awk '$3 == "Committed" {print $1; exit}')
         for j in 1 2 3 4 5; do
           bctr snapshots prepare "active-$i-$j" $parent >/dev/null && bctr snapshots commit "committed-$i-$j" "active-$i-$j" || break
         done ) ;;
    3) (
         bctr containers create $IMAGE "created-$i" && bctr run -d $IMAGE "run-$i" sleep 100000 && echo "run-$i" >>"$TEST_TMP/started" ) ;;
    4) (
         bctr images rm --sync docker.io/library/crash1:latest docker.io/library/crash2:latest
         for s in $(bctr snapshots ls | awk '/^(committed|active)-/ {print $1}' | sort -r); do bctr snapshots rm "$s"; done
         "$BERTH" --address "$BERTH_SOCK" gc ) ;;
    5) ( bctr images import "$TEST_TMP/img$(( (i / 6) % 2 + 1 )).tar" & "$BERTH" --address "$BERTH_SOCK" gc; wait ) ;;
  esac >/dev/null 2>&1
}

declare -A VERIFIED
BLOBS_VERIFIED=0

kill_tree () {
  local child
  for child in $(pgrep -P "$1"); do kill_tree "$child"; done
  kill -KILL "$1" 2>/dev/null
}

verify () {
  local problems=() d got n_dirs n_records
  # Blobs are immutable once committed: each is read back once, when it first appears.
  local blobs
  blobs=$(bctr content ls -q 2>&1) || problems+=("ctr content ls failed: $blobs")
  for d in $blobs; do
    [ -n "${VERIFIED[$d]:-}" ] && continue
    got=sha256:$(bctr content get "$d" 2>/dev/null | sha256sum | cut -d' ' -f1)
    if [ "$got" = "$d" ]; then VERIFIED[$d]=1; BLOBS_VERIFIED=$((BLOBS_VERIFIED + 1)); else problems+=("blob $d reads back as $got"); fi
  done
  local check_out
  check_out=$(bctr images check 2>&1 | tail -n +2)
  if printf '%s\n' "$check_out" | grep -Eq 'incomplete|missing|unavailable'; then problems+=("images check: $check_out"); fi
  "$BERTH" --address "$BERTH_SOCK" gc >/dev/null 2>&1 || problems+=("gc failed")
  $GRPC_CALL "$BERTH_SOCK" /containerd.services.snapshots.v1.Snapshots/Cleanup 1=overlayfs >/dev/null 2>&1 \
    || problems+=("snapshot cleanup failed")
  n_dirs=$(ls "$SNAPDIR" | wc -l)
  n_records=$(bctr snapshots ls | tail -n +2 | wc -l)
  [ "$n_dirs" = "$n_records" ] || problems+=("$n_dirs snapshot dirs but $n_records records: $(ls "$SNAPDIR" | tr '\n' ' ')")
  local tasks c
  tasks=$(bctr tasks ls 2>&1)
  for c in "${RUNNING[@]}"; do
    printf '%s\n' "$tasks" | grep -Eq "^$c +[0-9]+ +RUNNING" || problems+=("container $c is not running: $(printf '%s' "$tasks" | grep "^$c ")")
  done
  if [ ${#problems[@]} -eq 0 ]; then return 0; fi
  printf '%s\n' "${problems[@]}" | sed 's/^/#   /'
  return 1
}

for i in $(seq 1 "$ITERATIONS"); do
  delay=$(( (i * 97) % 700 ))
  name=$(case $((i % 6)) in 0) echo "import+unpack";; 1) echo "content ingest";; 2) echo "snapshot commits";; 3) echo "container create+start";; 4) echo "image delete+GC";; 5) echo "import during GC";; esac)
  operation "$i" &
  op_pid=$!
  sleep "$(printf '0.%03d' "$delay")"
  kill -KILL "$BERTHD_PID"
  wait "$BERTHD_PID" 2>/dev/null
  # The clients go too (some would wait for a daemon): none may reach the next one.
  kill_tree "$op_pid"
  wait "$op_pid" 2>/dev/null
  [ -f "$TEST_TMP/started" ] && mapfile -t started <"$TEST_TMP/started" && RUNNING=(keep "${started[@]}")
  if ! berthd_start crash >/dev/null; then
    not_ok "iteration $i ($name, SIGKILL after ${delay} ms): berthd does not come up again"
    tail -20 "$BERTHD_LOG" | sed 's/^/#   /'
    break
  fi
  if verify >"$TEST_TMP/verify.out"; then
    ok "iteration $i ($name, SIGKILL after ${delay} ms): up, blobs verify, images complete, snapshots match dirs, ${#RUNNING[@]} containers running"
  else
    not_ok "iteration $i ($name, SIGKILL after ${delay} ms)"
    cat "$TEST_TMP/verify.out"
  fi
done

# Stop what ran, by name.
for c in "${RUNNING[@]}"; do bctr tasks kill -s KILL "$c" >/dev/null 2>&1; done
sleep 0.5
for c in "${RUNNING[@]}"; do bctr tasks rm "$c" >/dev/null 2>&1; done
berthd_stop
diag "$BLOBS_VERIFIED distinct blobs verified; containers started meanwhile: ${RUNNING[*]}"
check "berthd stops cleanly at the end" test "$BERTHD_EXIT" -eq 0
tests_done
