#!/bin/bash
# 32-bit userspace on the 64-bit kernel: the i386 builds of the sample
# ramdisk and dblockctl (build-m32/, made by scripts/test-all.sh) serve and
# manage a device through the same ABI, with no compat translation.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
m32=$DBLOCK_ROOT/build-m32/bin
if [[ ! -x $m32/dblock_sample_ramdisk ]]; then
  echo "SKIP: no 32-bit build in $m32 (scripts/test-all.sh makes it)"
  exit 77
fi
file -L "$m32/dblock_sample_ramdisk" | grep -q 'ELF 32-bit' || die "$m32 holds no 32-bit build"
DBLOCK_BIN=$m32
. "$(dirname "$0")/../dblock-lib.sh"

load_dblock
start_sample ramdisk32 --size 64M
"$DBLOCKCTL" info ramdisk32 | grep -q "64 MiB" || { "$DBLOCKCTL" info ramdisk32; die "32-bit dblockctl info"; }
mkfs.ext4 -q /dev/ramdisk32
mkdir -p /tmp/m
mount /dev/ramdisk32 /tmp/m
write_files /tmp/m/d 10
umount /tmp/m
e2fsck -fn /dev/ramdisk32
mount /dev/ramdisk32 /tmp/m
check_files /tmp/m/d
umount /tmp/m
"$DBLOCKCTL" resize ramdisk32 96M
assert_eq $((96 << 20)) "$(blockdev --getsize64 /dev/ramdisk32)" "size after a 32-bit resize"
"$SAMPLE" --name ramdisk32 -d
wait_exit "$SAMPLE_PID" 30
unload_dblock
