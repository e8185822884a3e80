#!/bin/bash
# Online resize: grow while ext4 is mounted (lsblk and sysfs see it without
# reopening, resize2fs grows the filesystem), then shrink it offline.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../dblock-lib.sh"

load_dblock
start_sample grow0 --size 128M
mkfs.ext4 -q /dev/grow0
mkdir -p /tmp/m
mount /dev/grow0 /tmp/m
write_files /tmp/m/data 10
before=$(df -B1 --output=size /tmp/m | tail -1)
"$DBLOCKCTL" resize grow0 256M
assert_eq $((256 << 20)) "$(blockdev --getsize64 /dev/grow0)" "size after growing"
assert_eq $((256 << 11)) "$(cat /sys/block/grow0/size)" "sysfs size after growing"
assert_eq "256M" "$(lsblk -nd -o SIZE /dev/grow0 | tr -d ' ')" "lsblk size"
resize2fs /dev/grow0
after=$(df -B1 --output=size /tmp/m | tail -1)
((after > before + (100 << 20))) || die "filesystem did not grow: $before -> $after"
dd if=/dev/urandom of=/tmp/m/past-old-end bs=1M count=150 status=none
sync
check_files /tmp/m/data
rm /tmp/m/past-old-end
umount /tmp/m
e2fsck -fy /dev/grow0 >/dev/null || true
e2fsck -fn /dev/grow0
resize2fs /dev/grow0 100M
"$DBLOCKCTL" resize grow0 112M
assert_eq $((112 << 20)) "$(blockdev --getsize64 /dev/grow0)" "size after shrinking"
e2fsck -fn /dev/grow0
mount /dev/grow0 /tmp/m
check_files /tmp/m/data
umount /tmp/m
"$DBLOCKCTL" destroy grow0
wait_exit "$SAMPLE_PID" 30
unload_dblock
