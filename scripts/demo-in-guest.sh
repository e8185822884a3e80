#!/bin/bash
# The seed README's flow, run inside the guest by scripts/demo.sh.
# Usage: demo-in-guest.sh PATH/TO/dblock.ko
set -euo pipefail
bin=$(cd "$(dirname "$0")/.." && pwd)/build/bin
ko=$1

run() {
	printf '\n$ %s\n' "$*"
	"$@"
}

echo "guest kernel: $(uname -r)"
run insmod "$ko"
run ls -l /dev/dblockctl
printf '\n$ %s &\n' "dblock_sample_ramdisk"
"$bin/dblock_sample_ramdisk" &
server=$!
for _ in $(seq 100); do [ -b /dev/dblockramdisk ] && break; sleep 0.1; done
run ls -l /dev/dblockramdisk
run "$bin/dblockctl" list
run mkfs.ext4 -q /dev/dblockramdisk
run mkdir -p /tmp/mount
run mount /dev/dblockramdisk /tmp/mount
run cp -r "$bin" /tmp/mount/bin-copy
run sh -c "echo 'hello from a userspace block device' > /tmp/mount/hello.txt"
run sync
run df -h /tmp/mount
run cat /tmp/mount/hello.txt
run sh -c "cd /tmp/mount/bin-copy && sha256sum * > /tmp/sums && cd $bin && sha256sum -c --quiet /tmp/sums && echo copies identical"
run umount /tmp/mount
run e2fsck -fn /dev/dblockramdisk
run "$bin/dblock_sample_ramdisk" -d
printf '\n$ wait %s   # the serving process\n' "$server"
rc=0
wait "$server" || rc=$?
echo "dblock_sample_ramdisk exited with status $rc"
run rmmod dblock
[ "$rc" = 0 ] && [ ! -e /dev/dblockramdisk ]
echo
echo "demo: OK"
