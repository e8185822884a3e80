#!/bin/bash
# The harness works: guest modules load, devtmpfs shows the device, host tools run,
# the kernel-log check catches what it must, and a filesystem round-trips data on a
# kernel RAM disk.
set -euo pipefail
# shellcheck source=SCRIPTDIR/../lib.sh
. "$(dirname "$0")/../lib.sh"

[[ -n ${DBLOCK_GUEST_KVER:-} ]] || die "DBLOCK_GUEST_KVER unset: not run by vm/run-guest.sh?"
assert_eq "$DBLOCK_GUEST_KVER" "$(uname -r)" "guest kernel"
[[ $(kver_line) =~ ^[0-9]+\.[0-9]+$ ]] || die "kver_line gave '$(kver_line)' for $(uname -r)"

# The kernel-log check fails a case on each kind of line it must (RT's among them),
# and not on the expected taint notices.
bad_lines=(
  'WARNING: CPU: 1 PID: 42 at kernel/dblock_io.c:120 dblock_queue_rq+0x1/0x2 [dblock]'
  'BUG: sleeping function called from invalid context at kernel/locking/spinlock_rt.c:48'
  'BUG: scheduling while atomic: fio/123/0x00000002'
  'BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 stuck for 31s!'
  'watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [fio:99]'
  'INFO: task fio:77 blocked for more than 120 seconds.'
  'WARNING: possible circular locking dependency detected'
)
for l in "${bad_lines[@]}"; do
  echo "$l" >/tmp/kmsg-sample
  [[ -n $(dmesg_bad /tmp/kmsg-sample) ]] || die "the kernel-log check misses: $l"
done
printf '%s\n' 'dblock: loading out-of-tree module taints kernel.' \
  'dblock: module verification failed: signature and/or required key missing - tainting kernel' \
  >/tmp/kmsg-sample
[[ -z $(dmesg_bad /tmp/kmsg-sample) ]] || die "the kernel-log check fails a taint notice"

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
