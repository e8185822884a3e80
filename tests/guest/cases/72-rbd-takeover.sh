#!/bin/bash
# Takeover: dblock-serve serves /dev/rbdvol with --recovery wait; ext4 on it
# gets a file workload (each file fsynced); the server is SIGKILLed in the
# middle and a NEW server process started at once.  The new server waits
# for the dead one's exclusive lock, takes the device over (the kernel hands
# it the requests the dead server held), and the workload goes on without an
# error.  Then: unmount, e2fsck -fn clean, remount, every checksum equal.
# Prints how long the takeover took.
# Needs ~4 GiB guest memory and DBLOCK_CASE_TIMEOUT >= 900 under TCG.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../dblock-lib.sh"
. "$(dirname "$0")/../ceph-fixture.sh"

rbd_case_cleanup() {
  local rc=$?
  trap - EXIT
  set +e
  [[ -n ${WORK_PID:-} ]] && kill -KILL "$WORK_PID" 2>/dev/null
  umount -l /tmp/mnt 2>/dev/null
  [[ -n ${RBD_PID:-} ]] && kill -KILL "$RBD_PID" 2>/dev/null
  sleep 0.5
  "$DBLOCKCTL" destroy --force rbdvol >/dev/null 2>&1
  ceph_stop
  (exit "$rc")
  cleanup_dblock
}

need_rbd_server
grep -q DBLOCK_RECOVERY_WAIT "$DBLOCK_ROOT/include/uapi/linux/dblock.h" || die "no recovery policies in this ABI"
load_dblock
trap rbd_case_cleanup EXIT
ceph_start --osds 1
ceph_create_image vol 1G
start_rbd_server rbdvol vol --recovery wait --grace 300s
cat /tmp/rbd-rbdvol.log
[[ $(cat /sys/block/rbdvol/dblock/recovery 2>/dev/null || echo wait) == wait ]] ||
  die "the device's recovery policy is not 'wait'"
mkfs.ext4 -q /dev/rbdvol
mkdir -p /tmp/mnt /tmp/src
mount /dev/rbdvol /tmp/mnt
mkdir -p /tmp/mnt/data

# The workload: 40 files of 1-2 MiB, each written with fsync, their sums
# kept; a progress line per file with its time.
for ((i = 0; i < 40; i++)); do head -c $(((i % 5 + 4) * 262144)) /dev/urandom >/tmp/src/f$i; done
(cd /tmp/src && sha256sum ./* >/tmp/sums.txt)
: >/tmp/progress.txt
(
  for ((i = 0; i < 40; i++)); do
    dd if=/tmp/src/f$i of=/tmp/mnt/data/f$i bs=256k conv=fsync status=none || exit 1
    echo "$(date +%s.%N) f$i" >>/tmp/progress.txt
  done
) &
WORK_PID=$!
until [[ $(wc -l </tmp/progress.txt) -ge 8 ]]; do
  kill -0 "$WORK_PID" 2>/dev/null || die "the workload ended early"
  sleep 0.2
done

t_kill=$(date +%s.%N)
log "SIGKILL dblock-serve (pid $RBD_PID) after $(wc -l </tmp/progress.txt) files"
kill -KILL "$RBD_PID"
wait "$RBD_PID" 2>/dev/null || true
done_at_kill=$(wc -l </tmp/progress.txt)
start_rbd_server rbdvol vol --attach
t_serving=$(date +%s.%N)
cat /tmp/rbd-rbdvol.log
grep -q "took over" /tmp/rbd-rbdvol.log || die "the new server did not take the device over"
# The first file finished after the takeover.
deadline=$((SECONDS + 300))
until [[ $(wc -l </tmp/progress.txt) -gt $done_at_kill ]]; do
  kill -0 "$WORK_PID" 2>/dev/null || break
  ((SECONDS < deadline)) || die "no progress 300 s after the takeover"
  sleep 0.1
done
t_progress=$(sed -n "$((done_at_kill + 1))p" /tmp/progress.txt | cut -d' ' -f1)
rc=0
wait "$WORK_PID" || rc=$?
WORK_PID=""
((rc == 0)) || die "the workload failed (rc $rc) across the takeover"
assert_eq 40 "$(wc -l </tmp/progress.txt)" "files written"
awk -v k="$t_kill" -v s="$t_serving" -v p="${t_progress:-$t_serving}" 'BEGIN {
  printf "TAKEOVER: kill -> new server serving %.1f s; kill -> next file done %.1f s\n", s - k, p - k }' |
  tee /tmp/takeover.txt
grep "exclusive lock" /tmp/rbd-rbdvol.log || true
"$DBLOCKCTL" info rbdvol 2>/dev/null | grep -iE "requeued|errors|timeouts" || true

umount /tmp/mnt
e2fsck -fn /dev/rbdvol
mount /dev/rbdvol /tmp/mnt
check_files /tmp/mnt/data
umount /tmp/mnt

kill -TERM "$RBD_PID"
wait_exit "$RBD_PID" 90
RBD_PID=""
wait_gone /dev/rbdvol 30
ceph_stop
unload_dblock
