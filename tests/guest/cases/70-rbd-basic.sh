#!/bin/bash
# dblock-rbd on a throwaway 1-OSD Ceph cluster in the guest:
#  - clear, bounded errors: missing image, unreachable cluster, image locked
#    by another server;
#  - ext4 on the RBD-backed device: files written, unmount, e2fsck -fn clean,
#    fstrim (discards) when the module supports them;
#  - the device destroyed, a NEW server process on the same image: remount,
#    checksums equal;
#  - fio --verify at QD32 on the raw device.
# Needs ~4 GiB guest memory and DBLOCK_CASE_TIMEOUT >= 900 under TCG.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../dblock-lib.sh"
. "$(dirname "$0")/../ceph-fixture.sh"

rbd_case_cleanup() {
  local rc=$?
  trap - EXIT
  set +e
  umount -l /tmp/mnt 2>/dev/null
  [[ -n ${RBD_PID:-} ]] && kill -KILL "$RBD_PID" 2>/dev/null
  sleep 0.5
  "$DBLOCKCTL" destroy --force rbdvol >/dev/null 2>&1
  ceph_stop
  (exit "$rc")
  cleanup_dblock
}

[[ -x $DBLOCK_RBD ]] || die "no $DBLOCK_RBD (built only when librbd-dev is installed)"
load_dblock
trap rbd_case_cleanup EXIT
ceph_start --osds 1
ceph_create_image vol 1G

log "error: missing image"
rc=0
out=$("$DBLOCK_RBD" --conf "$CEPH_CONF" --image nope --name rbdnope 2>&1) || rc=$?
echo "$out"
((rc != 0)) || die "a missing image was accepted"
grep -q "rbd/nope: open image: No such file or directory" <<<"$out" || die "unclear error: $out"
[[ ! -e /dev/rbdnope ]] || die "/dev/rbdnope exists"

log "error: unreachable cluster"
sed 's/^mon host = .*/mon host = [v2:127.0.0.1:9,v1:127.0.0.1:10]/' "$CEPH_CONF" >/tmp/bad.conf
t0=$SECONDS rc=0
out=$(timeout 60 "$DBLOCK_RBD" --conf /tmp/bad.conf --connect-timeout 5 --image vol --name rbdnope 2>&1) || rc=$?
echo "$out (after $((SECONDS - t0))s)"
((rc != 0 && rc != 124)) || die "unreachable cluster: rc $rc"
grep -q "no monitor answered within 5 s" <<<"$out" || die "unclear error: $out"

log "serve rbd/vol as /dev/rbdvol"
start_rbd_server rbdvol vol
cat /tmp/rbd-rbdvol.log

log "error: image locked by another server"
t0=$SECONDS rc=0
out=$(timeout 120 "$DBLOCK_RBD" --conf "$CEPH_CONF" --image vol --name rbdvol2 --lock-timeout 5 2>&1) || rc=$?
echo "$out (after $((SECONDS - t0))s)"
((rc != 0 && rc != 124)) || die "a second server on a locked image: rc $rc"
grep -q "locked by another client" <<<"$out" || die "unclear error: $out"
[[ ! -e /dev/rbdvol2 ]] || die "/dev/rbdvol2 exists"

log "ext4 on /dev/rbdvol"
mkfs.ext4 -q /dev/rbdvol
mkdir -p /tmp/mnt
mount /dev/rbdvol /tmp/mnt
write_files /tmp/mnt/data 20
check_files /tmp/mnt/data
rm -f /tmp/mnt/data/file1*
(cd /tmp/mnt/data && sha256sum ./* >/tmp/sums.txt)
if [[ $(cat /sys/block/rbdvol/queue/discard_max_bytes) != 0 ]]; then
  log "discard granularity $(cat /sys/block/rbdvol/queue/discard_granularity)"
  fstrim -v /tmp/mnt
else
  log "this dblock.ko declares no discard: fstrim skipped"
fi
umount /tmp/mnt
e2fsck -fn /dev/rbdvol

log "destroy the device; a new server process serves the image again"
kill -TERM "$RBD_PID"
wait_exit "$RBD_PID" 90
wait_gone /dev/rbdvol 30
start_rbd_server rbdvol vol
mount /dev/rbdvol /tmp/mnt
check_files /tmp/mnt/data
umount /tmp/mnt
e2fsck -fn /dev/rbdvol

log "fio --verify at QD32"
t0=$SECONDS
timeout 600 fio --name=rbdverify --filename=/dev/rbdvol --direct=1 --ioengine=libaio \
  --iodepth=32 --rw=randwrite --bsrange=4k-64k --size=96M --offset=512M \
  --verify=crc32c --verify_fatal=1 --do_verify=1 --output=/tmp/fio.txt ||
  { cat /tmp/fio.txt; die "fio verify failed"; }
grep -E "IOPS|err=" /tmp/fio.txt
grep -q "err= 0" /tmp/fio.txt || die "fio reported errors"
log "fio verify took $((SECONDS - t0))s"

kill -TERM "$RBD_PID"
wait_exit "$RBD_PID" 90
cat /tmp/rbd-rbdvol.log
RBD_PID=""
wait_gone /dev/rbdvol 30
ceph_stop
unload_dblock
