#!/bin/bash
# dblock-serve --backend rbd: on a throwaway 1-OSD Ceph cluster in the guest:
#  - clear, bounded errors: missing image, unreachable cluster, image locked
#    by another server;
#  - ext4 on the RBD-backed device: files written; a file removed and
#    fstrim: the image's used size (rbd du) drops; unmount, e2fsck -fn clean;
#  - the device destroyed, a NEW server process on the same image: remount,
#    checksums equal;
#  - fio --verify at QD32 on the raw device;
#  - online resize: grown, the image grows with the device and what lies
#    past the old end reads back; shrunk (check_grow, check_shrink in
#    dblock-lib.sh).
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

# rbd_image_bytes IMAGE, rbd_used_bytes IMAGE: rbd info's size, rbd du's used size.
rbd_image_bytes() {
  timeout 120 rbd info --format json "rbd/$1" | sed -n 's/.*"size": *\([0-9]*\).*/\1/p'
}
rbd_used_bytes() {
  timeout 300 rbd du --format json "rbd/$1" | sed -n 's/.*"used_size": *\([0-9]*\).*/\1/p'
}

need_rbd_server
load_dblock
trap rbd_case_cleanup EXIT
ceph_start --osds 1
ceph_create_image vol 1G

log "error: missing image"
rc=0
out=$("$SERVE" rbdnope --backend rbd:rbd/nope --ceph-conf "$CEPH_CONF" 2>&1) || rc=$?
echo "$out"
((rc != 0)) || die "a missing image was accepted"
grep -q "rbd/nope: open image: No such file or directory" <<<"$out" || die "unclear error: $out"
[[ ! -e /dev/rbdnope ]] || die "/dev/rbdnope exists"

log "error: unreachable cluster"
sed 's/^mon host = .*/mon host = [v2:127.0.0.1:9,v1:127.0.0.1:10]/' "$CEPH_CONF" >/tmp/bad.conf
t0=$SECONDS rc=0
out=$(timeout 60 "$SERVE" rbdnope --backend rbd:rbd/vol --ceph-conf /tmp/bad.conf --connect-timeout 5s 2>&1) ||
  rc=$?
echo "$out (after $((SECONDS - t0))s)"
((rc != 0 && rc != 124)) || die "unreachable cluster: rc $rc"
grep -q "no monitor answered within 5 s" <<<"$out" || die "unclear error: $out"

log "serve rbd/vol as /dev/rbdvol"
start_rbd_server rbdvol vol
cat /tmp/rbd-rbdvol.log

log "error: image locked by another server"
t0=$SECONDS rc=0
out=$(timeout 120 "$SERVE" rbdvol2 --backend rbd:rbd/vol --ceph-conf "$CEPH_CONF" --lock-timeout 5s 2>&1) ||
  rc=$?
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

log "discard: fstrim after removing a file frees the image's space"
discard_max=$(cat /sys/block/rbdvol/queue/discard_max_bytes)
((discard_max > 0)) || die "/dev/rbdvol takes no discards (discard_max_bytes 0)"
log "discard granularity $(cat /sys/block/rbdvol/queue/discard_granularity), max $discard_max"
dd if=/dev/urandom of=/tmp/mnt/trimmed bs=1M count=64 status=none
sync
used_full=$(rbd_used_bytes vol) || die "rbd du failed"
rm /tmp/mnt/trimmed
sync
out=$(fstrim -v /tmp/mnt 2>&1) || die "fstrim failed: $out"
echo "$out"
trimmed=$(sed -n 's/.*(\([0-9]*\) bytes) trimmed.*/\1/p' <<<"$out")
((${trimmed:-0} >= 64 << 20)) || die "fstrim trimmed ${trimmed:-nothing}, less than the removed file"
used_trimmed=$(rbd_used_bytes vol) || die "rbd du failed"
log "rbd du: used $used_full bytes with the file, $used_trimmed after fstrim"
((used_full - used_trimmed >= 48 << 20)) ||
  die "fstrim freed $((used_full - used_trimmed)) bytes of rbd/vol, less than 48 MiB of the 64 MiB file"
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

log "online resize: the image grows with the device"
check_grow rbdvol 1088
assert_eq $((1088 << 20)) "$(rbd_image_bytes vol)" "size of rbd/vol (rbd info) after the device grew"
check_shrink rbdvol 1056
image=$(rbd_image_bytes vol) || die "rbd info failed"
log "rbd/vol has $image bytes after the device shrank to $((1056 << 20))"
((image >= 1056 << 20)) || die "rbd/vol ($image bytes) is smaller than the device"

kill -TERM "$RBD_PID"
wait_exit "$RBD_PID" 90
cat /tmp/rbd-rbdvol.log
RBD_PID=""
wait_gone /dev/rbdvol 30
ceph_stop
unload_dblock
