#!/bin/bash
# The installed package (tests/install/run.sh builds it under
# $DBLOCK_INSTALL_TEST_DIR): programs built out of tree against it, with
# CMake, pkg-config and pkg-config --static, each create a RAM-backed device,
# write and read a block through the disk and destroy it; the installed
# static dblock-serve serves; the installed udev rule gives the control
# device, the channels and the disks what it says (udevadm test).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../dblock-lib.sh"

dir=${DBLOCK_INSTALL_TEST_DIR:-/var/tmp/dblock-install-test}
if [[ ! -x $dir/bin/consumer-cmake ]]; then
  log "SKIP: no installed-package build in $dir (run tests/install/run.sh)"
  exit 77
fi
root=$dir/root prefix=/usr/local

load_dblock
n=0
for exe in consumer-cmake consumer-pkgconfig consumer-static; do
  n=$((n + 1))
  timeout 60 "$dir/bin/$exe" "inst$n" || die "$exe failed"
  [[ ! -e /dev/inst$n ]] || die "/dev/inst$n still exists after $exe"
done
ldd "$dir/bin/consumer-cmake" | grep "libdblock.so.0 => $root$prefix/lib/libdblock.so.0" ||
  die "consumer-cmake does not use the installed libdblock.so.0"

# The installed tools: they link libdblock.so.0, which in a DESTDIR tree
# the loader finds only when told where.
installed() { env LD_LIBRARY_PATH="$root$prefix/lib" "$@"; }
log "installed dblock-serve"
# Not through the function: $! must be the server's own pid (env execs it).
env LD_LIBRARY_PATH="$root$prefix/lib" "$root$prefix/bin/dblock-serve" instserve --backend ram --size 32M >/tmp/instserve.log 2>&1 &
pid=$!
(wait_for_path /dev/instserve 30) || { cat /tmp/instserve.log; die "installed dblock-serve did not serve"; }
dd if=/dev/urandom of=/tmp/blk bs=4096 count=4 status=none
timeout 60 dd if=/tmp/blk of=/dev/instserve bs=4096 oflag=direct status=none
cmp /tmp/blk <(dd if=/dev/instserve bs=4096 count=4 iflag=direct status=none) || die "instserve data differs"
installed "$root$prefix/bin/dblockctl" list | grep -q instserve || die "installed dblockctl does not list instserve"

# The udev rule, as udevd would apply it (no udevd in the guest).
mkdir -p /run/udev/rules.d
cp "$root/etc/udev/rules.d/60-dblock.rules" /run/udev/rules.d/
log "udev rule"
udev_test() { timeout 60 udevadm test --action=add "$1" 2>&1 || log "udevadm test $1: exit $?"; }
udev_test /sys/class/misc/dblockctl >/tmp/udev-ctl.txt
grep -Eq "MODE 0?600|mode=0?600|Setting permissions .*, 0?600" /tmp/udev-ctl.txt ||
  { cat /tmp/udev-ctl.txt; die "udev: no mode 0600 for /dev/dblockctl"; }
channel=$(ls -d /sys/class/dblock/* | head -n1)
udev_test "$channel" >/tmp/udev-chan.txt
grep -Eq "MODE 0?600|mode=0?600|Setting permissions .*, 0?600" /tmp/udev-chan.txt ||
  { cat /tmp/udev-chan.txt; die "udev: no mode 0600 for $channel"; }
if [[ -e /sys/block/instserve/dblock/id ]]; then
  udev_test /sys/block/instserve >/tmp/udev-disk.txt
  grep -q "disk/by-id/dblock-instserve" /tmp/udev-disk.txt ||
    { cat /tmp/udev-disk.txt; die "udev: no disk/by-id/dblock-instserve link"; }
else
  log "no /sys/block/instserve/dblock/: this dblock.ko predates the sysfs attributes; by-id link not checked"
fi
rm -f /run/udev/rules.d/60-dblock.rules

kill -TERM "$pid"
wait_exit "$pid" 30
cat /tmp/instserve.log
unload_dblock
