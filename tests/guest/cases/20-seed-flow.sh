#!/bin/bash
# The seed README's flow: the sample ramdisk serves /dev/dblockramdisk,
# mkfs.ext4, mount, files written, unmount, e2fsck clean, remount, checksums
# equal, `dblock_sample_ramdisk -d` destroys it and the server exits 0.
# dblock-transports: dblock ublk
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../dblock-lib.sh"

load_dblock
"$SAMPLE" >/tmp/sample.log 2>&1 &
pid=$!
wait_for_path /dev/dblockramdisk 30
[[ -b /dev/dblockramdisk ]] || die "/dev/dblockramdisk is not a block device"

mkfs.ext4 -q /dev/dblockramdisk
mkdir -p /tmp/mnt
mount /dev/dblockramdisk /tmp/mnt
write_files /tmp/mnt/data 30
check_files /tmp/mnt/data
umount /tmp/mnt
e2fsck -fn /dev/dblockramdisk
mount /dev/dblockramdisk /tmp/mnt
check_files /tmp/mnt/data
umount /tmp/mnt

"$SAMPLE" -d
wait_exit "$pid" 30
wait_gone /dev/dblockramdisk 10
cat /tmp/sample.log
unload_dblock
