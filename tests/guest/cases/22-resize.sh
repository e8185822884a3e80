#!/bin/bash
# Online resize of a device served by the sample (a RAM backend run on the
# queue threads):
#  - grown while ext4 is mounted: lsblk and sysfs see it without reopening,
#    resize2fs grows the file system, a file that lies past the old end is
#    written and read back (direct I/O), and e2fsck -fn finds the file
#    system clean after unmounting;
#  - the file system shrunk offline, then the device: e2fsck -fn clean, the
#    files intact;
#  - grown and shrunk again with the disk's own checks (check_grow,
#    check_shrink in dblock-lib.sh; 27-resize-file.sh and 70-rbd-basic.sh
#    run them over the other kinds of backend).
# dblock-transports: dblock ublk
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../dblock-lib.sh"

need_online_resize
load_dblock
start_sample grow0 --size 128M
mkfs.ext4 -q /dev/grow0
mkdir -p /tmp/m
mount /dev/grow0 /tmp/m
write_files /tmp/m/data 10
before=$(df -B1 --output=size /tmp/m | tail -1)
# What is free below the old end is taken (fallocate writes no data) but
# for root's 5% and a MiB; a file 8 MiB larger than what is left then lies
# past the old end.  sync first: blocks of data not yet written back are
# counted as used, but not allocated yet.
sync
fallocate -l $(($(df -B1 --output=avail /tmp/m | tail -1) - (1 << 20))) /tmp/m/filler
past_mib=$(($(stat -f -c '%f * %S' /tmp/m) / (1 << 20) + 8))
"$DBLOCKCTL" resize grow0 256M
assert_disk_size grow0 256
assert_eq "256M" "$(lsblk -nd -o SIZE /dev/grow0 | tr -d ' ')" "lsblk size"
resize2fs /dev/grow0
after=$(df -B1 --output=size /tmp/m | tail -1)
((after > before + (100 << 20))) || die "filesystem did not grow: $before -> $after"
log "a ${past_mib} MiB file, 8 MiB more than is free below the old end"
head -c "${past_mib}M" /dev/urandom >/tmp/past-old-end
dd if=/tmp/past-old-end of=/tmp/m/past-old-end bs=1M oflag=direct status=none
# Its last 4 KiB block on the disk (filefrag: extents, in 4 KiB blocks).
last=$(filefrag -e -b4096 /tmp/m/past-old-end |
  awk -F: '/^ *[0-9]+:/ { split($3, r, /\.\./); if (r[2] + 0 > m) m = r[2] + 0 } END { print m + 0 }')
if ((last < 128 << 8)); then
  filefrag -e -b4096 /tmp/m/past-old-end
  die "the file does not reach past the old end: its last block is $last"
fi
cmp /tmp/past-old-end <(dd if=/tmp/m/past-old-end bs=1M iflag=direct status=none) ||
  die "a file past the old end reads back different"
rm /tmp/past-old-end
check_files /tmp/m/data
rm /tmp/m/past-old-end /tmp/m/filler
umount /tmp/m
e2fsck -fn /dev/grow0
# resize2fs shrinks only a file system checked since it was last mounted,
# and -n records no check: the file system is clean, so this one must find
# nothing to do (exit code 0).
e2fsck -fp /dev/grow0
resize2fs /dev/grow0 100M
"$DBLOCKCTL" resize grow0 112M
assert_disk_size grow0 112
e2fsck -fn /dev/grow0
mount /dev/grow0 /tmp/m
check_files /tmp/m/data
umount /tmp/m

# The file system is done with: the disk's own checks.
check_grow grow0 176
check_shrink grow0 144
"$DBLOCKCTL" destroy grow0
wait_exit "$SAMPLE_PID" 30
unload_dblock
