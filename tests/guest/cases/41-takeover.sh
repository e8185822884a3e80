#!/bin/bash
# Replacing the server under a mounted filesystem (recovery policy "wait"):
# with ext4 mounted and fio verifying files on it, the server is killed with
# SIGKILL and a new one attaches; then the new one hands the device over
# (SIGUSR1) to a third.  fio must end with no I/O and no verify error, files
# fsync'd before the kill must read back from the backend (caches dropped),
# and e2fsck -fn must be clean.
# dblock-timeout: 900
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../dblock-lib.sh"

command -v fio >/dev/null || die "fio is not installed"
name=tk img=/tmp/takeover.img mnt=/tmp/tkmnt

# attach_serve N: server N takes over /dev/$name; sets SERVE_PID.
attach_serve() {
  start_serve "$name" --backend "file:$img" --attach
  assert_eq "$SERVE_PID" "$(cat /sys/block/$name/dblock/server_pid)" "server_pid after takeover $1"
}

io_errors() { dmesg | grep -cE "I/O error.*dev $name|EXT4-fs error.*$name" || true; }

load_dblock
rm -f "$img" && truncate -s 512M "$img"
start_serve "$name" --backend "file:$img" --queues 2 --depth 32 --recovery wait --grace never
assert_eq wait "$(cat /sys/block/$name/dblock/recovery)" "recovery policy"
mkfs.ext4 -q "/dev/$name"
mkdir -p "$mnt" && mount "/dev/$name" "$mnt"
errors_before=$(io_errors)

# Written and fsync'd before anything happens to the server.
write_files "$mnt/synced" 16
sync -f "$mnt/synced/big"

# Direct and buffered writers, verifying as they go, across both replacements.
start_fio_writers "$mnt" takeover 48M 32M

wait_writes "$name" $(($(disk_writes "$name") + 1000)) takeover
first=$SERVE_PID
kill -KILL "$first"
wait "$first" 2>/dev/null || true
log "killed server $first with I/O in flight; requeued so far: $(cat /sys/block/$name/dblock/requeued)"
assert_eq 0 "$(cat /sys/block/$name/dblock/server_pid)" "server_pid with no server"
sleep 2
kill -0 "$fio_pid" 2>/dev/null || { cat /tmp/fio.takeover.out; die "fio ended while no server was attached"; }
attach_serve 2
# Requests the dead server held (if the kill caught any) went back to the
# queue: "requeued" counts them (tests/kernel_abi checks that path exactly).
log "server $SERVE_PID took over; requeued: $(cat /sys/block/$name/dblock/requeued)"

# fsync'd data comes back from the backend, not from the page cache.
echo 3 >/proc/sys/vm/drop_caches
check_files "$mnt/synced"

wait_writes "$name" $(($(disk_writes "$name") + 1000)) takeover
second=$SERVE_PID
kill -USR1 "$second"
wait_exit "$second" 60
grep -q "handed /dev/$name over" "/tmp/serve-$name.log" || die "server 2 did not say it handed over"
attach_serve 3
log "server 2 handed over to $SERVE_PID"
wait_writes "$name" $(($(disk_writes "$name") + 1000)) takeover
check_fio_writers takeover
assert_eq "$errors_before" "$(io_errors)" "I/O or ext4 errors in the kernel log"
assert_eq 0 "$(cat /sys/block/$name/dblock/errors)" "requests the servers failed"

check_files "$mnt/synced"
umount "$mnt"
e2fsck -fn "/dev/$name" || die "e2fsck found errors after the takeovers"

# A handover under the "fail" policy would fail I/O: the server refuses it.
"$DBLOCKCTL" set "$name" --recovery fail
kill -USR1 "$SERVE_PID"
sleep 1
kill -0 "$SERVE_PID" 2>/dev/null || die "the server handed over under the fail policy"
grep -q "not handing /dev/$name over" "/tmp/serve-$name.log" || die "no refusal message"

"$DBLOCKCTL" destroy "$name"
wait_exit "$SERVE_PID" 30
rm -f "$img"
unload_dblock
