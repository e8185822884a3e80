#!/bin/bash
# NBD exports as dblock disks (dblock-serve --backend nbd+unix://...):
#  - nbdkit's memory plugin: fio verify at queue depth 32, then ext4, checked;
#  - fstrim reaches the export: nbdkit's file plugin gives the space back;
#  - a qcow2 image served by qemu-nbd holds an ext4 that qemu-img check and
#    e2fsck -fn find clean; served read-only, the disk is read-only;
#  - nbdkit killed and restarted under fio verify with --recovery wait: the
#    requests wait for it and are sent again, no I/O error, no verify error;
#    with --recovery fail they fail at once and the server goes on;
#  - a refused connection, an unknown export, an export whose size is not a
#    multiple of the block size: one line each, with the fix, exit 1.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../dblock-lib.sh"

for tool in fio nbdkit qemu-nbd qemu-img; do
  command -v "$tool" >/dev/null || die "$tool is not installed (scripts/install-deps.sh)"
done
load_dblock
dir=/tmp/nbd
mkdir -p "$dir" /tmp/mnt
NBD_PIDS=()
# shellcheck disable=SC2329 # called by cleanup_dblock, once the devices are gone
case_cleanup() {
  local p
  for p in "${NBD_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
}

# start_nbdkit NAME PLUGIN ARGS...: nbdkit on $dir/NAME.sock, in the
# background (NBDKIT_PID), once it accepts connections (it writes its pid
# file then).
start_nbdkit() {
  local name=$1
  shift
  rm -f "$dir/$name.sock" "$dir/$name.pid"
  nbdkit -f -U "$dir/$name.sock" -P "$dir/$name.pid" "$@" 2>>"$dir/$name.log" &
  NBDKIT_PID=$!
  NBD_PIDS+=("$NBDKIT_PID")
  wait_for_path "$dir/$name.pid" 20
}
uri() { echo "nbd+unix:///?socket=$dir/$1.sock"; }

# --- nbdkit memory: fio verify at QD32, then ext4 ---
start_nbdkit mem memory 256M
start_serve nbdmem --backend "$(uri mem)" --queues 2 --depth 32
want="$(uri mem), 2 connections)"
grep -qF "$want" /tmp/serve-nbdmem.log || { cat /tmp/serve-nbdmem.log; die "no '$want' in the serving line"; }
assert_disk_size nbdmem 256
assert_eq "nbdmem $(uri mem)" "$("$DBLOCKCTL" list -o NAME,BACKEND -n -r | grep '^nbdmem ')" \
  "dblockctl list -o NAME,BACKEND -n -r"
fio --name=verify --filename=/dev/nbdmem --ioengine=libaio --direct=1 --rw=randwrite \
  --bsrange=4k-256k --iodepth=32 --size=96M --fsync=16 --verify=crc32c --verify_fatal=1 \
  --do_verify=1 --output-format=terse >/tmp/fio.nbdmem.out ||
  { cat /tmp/fio.nbdmem.out; die "fio verify on nbdkit memory failed"; }
log "fio on nbdkit memory: $(grep -v '^fio:' /tmp/fio.nbdmem.out | cut -d';' -f3,4 | head -1)"
mkfs.ext4 -q -F /dev/nbdmem
mount /dev/nbdmem /tmp/mnt
write_files /tmp/mnt/data 10
umount /tmp/mnt
e2fsck -fn /dev/nbdmem
mount /dev/nbdmem /tmp/mnt
check_files /tmp/mnt/data
umount /tmp/mnt
"$DBLOCKCTL" destroy nbdmem
wait_exit "$SERVE_PID" 30

# --- fstrim reaches the export: the file plugin punches holes ---
truncate -s 256M "$dir/trim.img"
start_nbdkit trim file "$dir/trim.img"
start_serve nbdtrim --backend "$(uri trim)"
[[ $(cat /sys/block/nbdtrim/queue/discard_max_bytes) -gt 0 ]] || die "nbdtrim has no discard"
mkfs.ext4 -q -F -E nodiscard /dev/nbdtrim
mount /dev/nbdtrim /tmp/mnt
dd if=/dev/urandom of=/tmp/mnt/big bs=1M count=64 status=none
sync
before=$(allocated_bytes "$dir/trim.img")
rm /tmp/mnt/big
sync # the blocks are free (for fstrim) once the journal committed it
fstrim -v /tmp/mnt
after=$(allocated_bytes "$dir/trim.img")
log "trim.img allocated: $((before >> 20)) MiB before fstrim, $((after >> 20)) MiB after"
((before - after >= 48 << 20)) || die "fstrim gave back $(((before - after) >> 20)) MiB of 64 MiB"
umount /tmp/mnt
"$DBLOCKCTL" destroy nbdtrim
wait_exit "$SERVE_PID" 30

# --- a qcow2 image through qemu-nbd ---
qemu-img create -q -f qcow2 "$dir/disk.qcow2" 256M
qemu-nbd -k "$dir/q.sock" -f qcow2 -e 4 -t --discard=unmap "$dir/disk.qcow2" 2>>"$dir/q.log" &
QEMU_NBD_PID=$!
NBD_PIDS+=("$QEMU_NBD_PID")
wait_for_path "$dir/q.sock" 20
start_serve nbdq --backend "$(uri q)"
mkfs.ext4 -q -F /dev/nbdq
mount /dev/nbdq /tmp/mnt
write_files /tmp/mnt/data 10
umount /tmp/mnt
"$DBLOCKCTL" destroy nbdq
wait_exit "$SERVE_PID" 30
kill -TERM "$QEMU_NBD_PID"
wait "$QEMU_NBD_PID" || true # its exit status on SIGTERM is not the check
qemu-img check -q "$dir/disk.qcow2" || die "qemu-img check found the qcow2 image damaged"
# Read-only: the export is, so the disk is.
qemu-nbd -k "$dir/q.sock" -f qcow2 -r -e 4 -t "$dir/disk.qcow2" 2>>"$dir/q.log" &
QEMU_NBD_PID=$!
NBD_PIDS+=("$QEMU_NBD_PID")
wait_for_path "$dir/q.sock" 20
start_serve nbdq --backend "$(uri q)"
assert_eq 1 "$(blockdev --getro /dev/nbdq)" "read-only flag of a disk on a read-only export"
grep -qF "read-only export" /tmp/serve-nbdq.log || { cat /tmp/serve-nbdq.log; die "no 'read-only export'"; }
e2fsck -fn /dev/nbdq
mount -o ro /dev/nbdq /tmp/mnt
check_files /tmp/mnt/data
umount /tmp/mnt
"$DBLOCKCTL" destroy nbdq
wait_exit "$SERVE_PID" 30
kill -TERM "$QEMU_NBD_PID"
wait "$QEMU_NBD_PID" || true

# --- nbdkit killed and restarted under fio verify ---
# kill_nbdkit_under_fio NAME: waits until fio (FIO_PID) has written 8 MiB to
# /dev/NAME, kills nbdkit, starts it again 2 s later.
kill_nbdkit_under_fio() {
  local sectors
  until sectors=$(awk '{print $7}' "/sys/block/$1/stat") && ((sectors >= 16384)); do
    kill -0 "$FIO_PID" 2>/dev/null || die "fio ended before 8 MiB were written"
    sleep 0.1
  done
  kill -0 "$FIO_PID" || die "fio ended before nbdkit was killed: nothing tested"
  kill -KILL "$NBDKIT_PID"
  wait "$NBDKIT_PID" 2>/dev/null || true # SIGKILLed: its status is not the check
  sleep 2                                # the server stays away a while
  start_nbdkit kill file "$dir/kill.img"
}
truncate -s 128M "$dir/kill.img"
start_nbdkit kill file "$dir/kill.img"
start_serve nbdkill --backend "$(uri kill)" --recovery wait --timeout 60s --depth 32
fio --name=verify --filename=/dev/nbdkill --ioengine=libaio --direct=1 --rw=randwrite \
  --bsrange=4k-128k --iodepth=32 --size=64M --rate=12m --verify=crc32c --verify_fatal=1 \
  --do_verify=1 --output-format=terse >/tmp/fio.nbdkill.out 2>&1 &
FIO_PID=$!
kill_nbdkit_under_fio nbdkill
wait "$FIO_PID" || { cat /tmp/fio.nbdkill.out; die "fio verify failed across the nbdkit restart"; }
grep -q "connection lost" /tmp/serve-nbdkill.log || { cat /tmp/serve-nbdkill.log; die "no 'connection lost'"; }
grep -q "reconnected" /tmp/serve-nbdkill.log || { cat /tmp/serve-nbdkill.log; die "no 'reconnected'"; }
# fio kept the queue full: requests came while nbdkit was away, and waited.
grep -qE "reconnected; [1-9][0-9]* request\(s\) held sent again" /tmp/serve-nbdkill.log ||
  { cat /tmp/serve-nbdkill.log; die "no request was held while nbdkit was away"; }
log "across the restart: $(grep -E 'lost|reconnected' /tmp/serve-nbdkill.log | tr '\n' ' ')"
if dmesg | grep -q "I/O error, dev nbdkill"; then dmesg | grep nbdkill; die "I/O errors on nbdkill"; fi
"$DBLOCKCTL" destroy nbdkill
wait_exit "$SERVE_PID" 30
# With --recovery fail: a read while nbdkit is away fails at once, and the
# server goes on once it is back.
start_serve nbdfail --backend "$(uri kill)" --recovery fail
kill -KILL "$NBDKIT_PID"
wait "$NBDKIT_PID" 2>/dev/null || true
start=$SECONDS
if dd if=/dev/nbdfail of=/dev/null bs=4k count=1 skip=100 iflag=direct status=none; then
  die "a read with nbdkit gone succeeded"
fi
((SECONDS - start < 10)) || die "the read took $((SECONDS - start)) s to fail"
start_nbdkit kill file "$dir/kill.img"
deadline=$((SECONDS + 20))
until dd if=/dev/nbdfail of=/dev/null bs=4k count=1 skip=200 iflag=direct status=none 2>/dev/null; do
  ((SECONDS < deadline)) || die "nbdfail still fails 20 s after nbdkit came back"
  sleep 0.2
done
"$DBLOCKCTL" destroy nbdfail
wait_exit "$SERVE_PID" 30

# --- errors: one line with the fix, exit 1 ---
expect_serve_error() {
  local want=$1 rc=0 out
  shift
  out=$("$SERVE" nbdbad "$@" 2>&1) || rc=$?
  log "dblock-serve nbdbad $* -> rc=$rc: $out"
  assert_eq 1 "$rc" "exit code of dblock-serve $*"
  assert_eq 1 "$(wc -l <<<"$out")" "lines of the message"
  [[ $out == *"$want"* ]] || die "no '$want' in: $out"
  [[ ! -e /dev/nbdbad ]] || die "/dev/nbdbad was created"
}
expect_serve_error "no NBD server listens there" --backend "nbd+unix:///?socket=$dir/none.sock"
start_nbdkit named --filter=exportname memory 1M exportname=disk1 exportname-strict=true
expect_serve_error "no export named 'disk2': No such file or directory (list the exports: nbdinfo" \
  --backend "nbd+unix:///disk2?socket=$dir/named.sock"
start_nbdkit odd memory 1000000
expect_serve_error "not a non-zero multiple of the block size 4096 (fix: --size 999424" \
  --backend "$(uri odd)"
