#!/bin/bash
# Partition scanning is on: a GPT with two partitions made by sfdisk shows
# up as /dev/NAMEp1 and p2, each holds a filesystem.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../dblock-lib.sh"

load_dblock
start_sample part0 --size 128M
printf 'label: gpt\n,48M\n,\n' | sfdisk -q /dev/part0
wait_for_path /dev/part0p1 10
wait_for_path /dev/part0p2 10
assert_eq 2 "$(lsblk -nr -o NAME /dev/part0 | grep -c '^part0p')" "partitions listed by lsblk"
mkfs.ext4 -q /dev/part0p1
mkfs.ext4 -q /dev/part0p2
mkdir -p /tmp/p1 /tmp/p2
mount /dev/part0p1 /tmp/p1
mount /dev/part0p2 /tmp/p2
echo one >/tmp/p1/f
echo two >/tmp/p2/f
umount /tmp/p1 /tmp/p2
e2fsck -fn /dev/part0p1
e2fsck -fn /dev/part0p2
mount /dev/part0p2 /tmp/p2
assert_eq two "$(cat /tmp/p2/f)" "content of the second partition"
umount /tmp/p2
"$DBLOCKCTL" destroy part0
wait_exit "$SAMPLE_PID" 30
wait_gone /dev/part0p1 10
unload_dblock
