#!/bin/bash
# Partition scanning is on: a GPT with two partitions made by sfdisk shows
# up as /dev/NAMEp1 and p2 (over ublk /dev/ublkbNp1 and p2), each holds a
# filesystem.
# dblock-transports: dblock ublk
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../dblock-lib.sh"

load_dblock
start_sample part0 --size 128M
printf 'label: gpt\n,48M\n,\n' | sfdisk -q /dev/part0
p1=$(part_path part0 1) p2=$(part_path part0 2)
wait_for_path "$p1" 10
wait_for_path "$p2" 10
disk=$(basename "$(readlink -f /dev/part0)")
assert_eq 2 "$(lsblk -nr -o NAME /dev/part0 | grep -c "^${disk}p")" "partitions listed by lsblk"
mkfs.ext4 -q "$p1"
mkfs.ext4 -q "$p2"
mkdir -p /tmp/p1 /tmp/p2
mount "$p1" /tmp/p1
mount "$p2" /tmp/p2
echo one >/tmp/p1/f
echo two >/tmp/p2/f
umount /tmp/p1 /tmp/p2
e2fsck -fn "$p1"
e2fsck -fn "$p2"
mount "$p2" /tmp/p2
assert_eq two "$(cat /tmp/p2/f)" "content of the second partition"
umount /tmp/p2
"$DBLOCKCTL" destroy part0
wait_exit "$SAMPLE_PID" 30
wait_gone "$p1" 10
unload_dblock
