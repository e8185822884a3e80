#!/bin/bash
# dblock-serve --backend rbd: on a 3-OSD cluster (pool size 3, min_size 2): one OSD is
# SIGKILLed during fio --verify at QD32; fio must see no I/O or verify error
# and the kernel log no I/O error.
# Needs ~4 GiB guest memory and DBLOCK_CASE_TIMEOUT >= 900 under TCG.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../dblock-lib.sh"
. "$(dirname "$0")/../ceph-fixture.sh"

rbd_case_cleanup() {
  local rc=$?
  trap - EXIT
  set +e
  [[ -n ${FIO_PID:-} ]] && kill -KILL "$FIO_PID" 2>/dev/null
  [[ -n ${RBD_PID:-} ]] && kill -KILL "$RBD_PID" 2>/dev/null
  sleep 0.5
  "$DBLOCKCTL" destroy --force rbdvol >/dev/null 2>&1
  ceph_stop
  (exit "$rc")
  cleanup_dblock
}

need_rbd_server
load_dblock
trap rbd_case_cleanup EXIT
ceph_start --osds 3
ceph_create_image vol 512M
start_rbd_server rbdvol vol
cat /tmp/rbd-rbdvol.log
ioerr_before=$(dmesg | grep -c "I/O error" || true)

timeout 900 fio --name=osdkill --filename=/dev/rbdvol --direct=1 --ioengine=libaio \
  --iodepth=32 --rw=randwrite --bsrange=4k-64k --size=64M \
  --verify=crc32c --verify_fatal=1 --do_verify=1 --output=/tmp/fio.txt &
FIO_PID=$!
sleep 15
kill -0 "$FIO_PID" 2>/dev/null || die "fio ended before the OSD was killed: make it longer"
t_kill=$SECONDS
log "SIGKILL osd.2 (pid $(ceph_osd_pid 2))"
ceph_kill_osd 2
rc=0
wait "$FIO_PID" || rc=$?
FIO_PID=""
log "fio ended $((SECONDS - t_kill))s after the kill, rc $rc"
cat /tmp/fio.txt
((rc == 0)) || die "fio failed (rc $rc)"
grep -q "err= 0" /tmp/fio.txt || die "fio reported errors"
grep -qi "verify.*bad\|crc32c.*bad" /tmp/fio.txt && die "fio verify mismatch"
ioerr_after=$(dmesg | grep -c "I/O error" || true)
assert_eq "$ioerr_before" "$ioerr_after" "kernel I/O errors during the OSD failure"
timeout 60 ceph osd stat 2>/dev/null || true

kill -TERM "$RBD_PID"
wait_exit "$RBD_PID" 90
cat /tmp/rbd-rbdvol.log
RBD_PID=""
wait_gone /dev/rbdvol 30
ceph_stop
unload_dblock
