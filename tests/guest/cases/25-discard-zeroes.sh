#!/bin/bash
# blkdiscard and blkdiscard -z reach the backend as their own operations and
# read back as zeroes; fio verifies data across trim and write-zeroes
# workloads; the read-only flag is honoured.
# dblock-transports: dblock ublk
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../dblock-lib.sh"

load_dblock
rm -f /tmp/dz.img && truncate -s 256M /tmp/dz.img
start_serve dz --backend file:/tmp/dz.img
dd if=/dev/urandom of=/dev/dz bs=1M count=256 oflag=direct status=none
full=$(allocated_bytes /tmp/dz.img)
blkdiscard -o 0 -l 64M /dev/dz
assert_eq 0 "$(head -c 64M /dev/dz | tr -d '\0' | wc -c)" "discarded range reads as zeroes"
((full - $(allocated_bytes /tmp/dz.img) >= (60 << 20))) || die "discard did not punch the backing file"
blkdiscard -z -o 64M -l 64M /dev/dz
assert_eq 0 "$(dd if=/dev/dz bs=1M skip=64 count=64 status=none | tr -d '\0' | wc -c)" "zeroed range"
(($(discards_done dz) >= 1)) || die "no discard counted"
if [[ $DBLOCK_TRANSPORT == ublk ]]; then
  # No count of its own: the disk takes write zeroes, so the kernel sends them
  # rather than writing zeroes itself.
  (($(cat "$(disk_sysfs dz)/queue/write_zeroes_max_bytes") > 0)) || die "ublk disk takes no write zeroes"
else
  (($(cat /sys/block/dz/dblock/write_zeroes) >= 1)) || die "no write zeroes counted"
fi

# trimwrite: each block is trimmed, then written and verified.
fio --name=trimverify --filename=/dev/dz --ioengine=libaio --direct=1 --rw=trimwrite \
  --bs=64k --iodepth=16 --size=128M --verify=crc32c --verify_fatal=1 \
  --output-format=terse >/tmp/fio.trim.out || { cat /tmp/fio.trim.out; die "fio trim verify failed"; }
fio --name=zeroverify --filename=/dev/dz --ioengine=libaio --direct=1 --rw=randwrite \
  --bs=16k --iodepth=16 --size=64M --offset=128M --zero_buffers --verify=pattern \
  --verify_pattern=0x00 --verify_fatal=1 --output-format=terse >/tmp/fio.zero.out ||
  { cat /tmp/fio.zero.out; die "fio zero verify failed"; }
"$DBLOCKCTL" destroy dz
wait_exit "$SERVE_PID" 30

start_serve ro --backend ram --size 64M --read-only
assert_eq 1 "$(blockdev --getro /dev/ro)" "blockdev --getro"
if dd if=/dev/zero of=/dev/ro bs=4k count=1 oflag=direct status=none 2>/dev/null; then
  die "a write to a read-only device succeeded"
fi
head -c 4096 /dev/ro >/dev/null
"$DBLOCKCTL" destroy ro
wait_exit "$SERVE_PID" 30
unload_dblock
