#!/bin/bash
# The harness works: guest modules load, devtmpfs shows the device, host tools run,
# and a filesystem round-trips data on a kernel RAM disk.
set -euo pipefail
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"

[[ -n ${DBLOCK_GUEST_KVER:-} ]] || die "DBLOCK_GUEST_KVER unset: not run by vm/run-guest.sh?"
assert_eq "$DBLOCK_GUEST_KVER" "$(uname -r)" "guest kernel"
case $(kver_line) in 6.1 | 6.12) ;; *) die "unexpected kernel line $(kver_line)" ;; esac

lsmod | grep -q '^brd ' && rmmod brd
modprobe brd rd_nr=1 rd_size=65536
wait_for_path /dev/ram0 10
assert_eq $((64 * 1024 * 1024)) "$(blockdev --getsize64 /dev/ram0)" "ram0 size"

mnt=$(mktemp -d)
mkfs.ext4 -q -F /dev/ram0
mount /dev/ram0 "$mnt"
head -c 8M /dev/urandom >/tmp/payload
sum=$(sha256sum </tmp/payload)
cp /tmp/payload "$mnt/payload"
umount "$mnt"
echo 3 >/proc/sys/vm/drop_caches
mount -o ro /dev/ram0 "$mnt"
assert_eq "$sum" "$(sha256sum <"$mnt/payload")" "payload checksum after remount"
umount "$mnt"
e2fsck -fn /dev/ram0
rmmod brd
wait_gone /dev/ram0 10
log "brd round trip ok on $(uname -r)"
