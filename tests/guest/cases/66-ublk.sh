#!/bin/bash
# libdblock over the kernel's ublk instead of dblock.ko (dblock-serve
# --transport ublk; auto picks it when dblock.ko is not loaded): the seed flow
# (ext4, files, e2fsck, remount), fio verify at QD32 on two queues, discard
# and write zeroes reaching a file backend, SIGTERM deleting the device and its
# /dev/NAME link with the server exiting 0, a takeover under the 'wait' policy
# (ublk's user recovery) with ext4 mounted and fio verifying, a planned
# handover (SIGUSR1) under the same load, and one-line
# errors for what only dblock.ko does (and, before Linux 6.14, online resize).  Skipped where the kernel has no
# ublk_drv (Debian 12's 6.1).
# dblock-timeout: 600
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../dblock-lib.sh"

# shellcheck disable=SC2034 # read by dblock-lib.sh
DBLOCK_TRANSPORT=ublk
load_dblock  # ublk_drv, without dblock.ko; exits 77 where there is none
mnt=/tmp/ublk-mnt
mkdir -p "$mnt"
img=/tmp/ublk-case.img
case_cleanup() {
  umount -l "$mnt" 2>/dev/null
  rm -f "$img"
}

# ublk_of NAME: N of the /dev/ublkbN that /dev/NAME links to.
ublk_of() {
  local target
  [[ -L /dev/$1 ]] || die "/dev/$1 is not a link"
  target=$(readlink "/dev/$1")
  [[ $target =~ ^ublkb([0-9]+)$ ]] || die "/dev/$1 links to '$target', not a ublk disk"
  echo "${BASH_REMATCH[1]}"
}

# stop_ublk NAME: SIGTERM deletes the device; the server exits 0.
stop_ublk() {
  local n
  n=$(ublk_of "$1")
  kill -TERM "$SERVE_PID"
  wait_exit "$SERVE_PID" 60
  wait_gone "/dev/$1" 10
  wait_gone "/dev/ublkb$n" 10
  wait_gone "/dev/ublkc$n" 10
  grep -q "/dev/$1 was destroyed, exiting" "/tmp/serve-$1.log" ||
    { cat "/tmp/serve-$1.log"; die "no exit message"; }
}

# 1. Without dblock.ko, auto takes ublk, with the shape asked for.  (The
# seed flow, fio verify and the example run over ublk as 20@ublk, 40@ublk
# and 61@ublk.)
start_serve uvol --backend ram --size 256M --queues 2 --depth 32
grep -q "serving /dev/uvol -> /dev/ublkb[0-9]*, ublk" /tmp/serve-uvol.log ||
  { cat /tmp/serve-uvol.log; die "the server does not say it serves over ublk"; }
n=$(ublk_of uvol)
assert_eq $((256 << 20)) "$(blockdev --getsize64 /dev/uvol)" "size of /dev/uvol"
assert_eq 2 "$(find /sys/block/ublkb"$n"/mq -mindepth 1 -maxdepth 1 | wc -l)" "hardware queues of ublkb$n"
assert_eq 32 "$(cat /sys/block/ublkb"$n"/queue/nr_requests)" "depth of ublkb$n"
# dblockctl lists it without dblock.ko, with its transport, name and server.
assert_eq "$n uvol 256 MiB ublk live $SERVE_PID" \
  "$("$DBLOCKCTL" list -n -o id,name,size,transport,state,server | tr -s ' ' | sed 's/^ //')" \
  "dblockctl list"
"$DBLOCKCTL" list --json | grep -q '"transport": "ublk"' || die "dblockctl list --json: no transport"
# Online resize over ublk (UBLK_U_CMD_UPDATE_SIZE) came in Linux 6.14: before,
# the server says so when it starts and dblockctl resize refuses; after, the
# server takes dblockctl's resize asks (22@ublk and 27@ublk grow and shrink
# disks that way) and one it refuses reaches dblockctl.
IFS=. read -r kmajor kminor _ <<<"$(uname -r)"
if ((kmajor > 6 || (kmajor == 6 && kminor >= 14))); then
  lacks="" resize_args="resize uvol 300001K"
  resize_says="resize ublk device $n: .*not a positive multiple of its 4096-byte blocks"
else
  lacks="; over ublk no online resize (Linux 6.14 has it)" resize_args="resize uvol 512M"
  resize_says="resize ublk device $n: .*(this kernel's ublk has no online resize, .*; fix: "
fi
serving=$(grep -o "serving /dev/uvol .*" /tmp/serve-uvol.log)
[[ $serving == *")$lacks" && (-n $lacks || $serving != *"over ublk"*) ]] ||
  { cat /tmp/serve-uvol.log; die "the server does not say (only) what ublk lacks ('$lacks')"; }
# dblockctl info finds it by name; set is dblock.ko's: refused in one line,
# with the fix; a refused resize too; the disk unchanged.
info=$("$DBLOCKCTL" info uvol)
grep -q "^channel: */dev/ublkc$n$" <<<"$info" ||
  { echo "$info"; die "dblockctl info uvol: not ublkc$n"; }
grep -q "^timeout: *never$" <<<"$info" || { echo "$info"; die "dblockctl info uvol: a timeout ublk does not have"; }
for args in "$resize_args" "set uvol --timeout 5s"; do
  rc=0
  # shellcheck disable=SC2086 # words
  out=$("$DBLOCKCTL" $args 2>&1) || rc=$?
  assert_eq 1 "$rc" "exit code of dblockctl $args"
  assert_eq 1 "$(wc -l <<<"$out")" "lines of output of dblockctl $args: $out"
  if [[ $args == resize* ]]; then
    grep -q "$resize_says" <<<"$out" || die "dblockctl $args: not '$resize_says' in: $out"
  else
    grep -q "served over ublk (/dev/ublkb$n): .* goes with dblock.ko (fix: " <<<"$out" ||
      die "no fix in: $out"
  fi
done
assert_eq $((256 << 20)) "$(blockdev --getsize64 /dev/uvol)" "size of /dev/uvol after a refused resize"
stop_ublk uvol

# 2. A file backend: flush, discard and write zeroes reach it; SIGTERM
# waits for the file system on it to be unmounted.
truncate -s 64M "$img"
start_serve ufile --transport ublk --backend "file:$img" --queues 1
n=$(ublk_of ufile)
assert_eq "write back" "$(cat /sys/block/ublkb"$n"/queue/write_cache)" "write cache of ublkb$n"
[[ $(cat /sys/block/ublkb"$n"/queue/discard_max_bytes) -gt 0 ]] || die "ublkb$n has no discard"
dd if=/dev/urandom of=/dev/ufile bs=1M count=16 oflag=direct status=none
sync /dev/ufile
before=$(allocated_bytes "$img")
((before >= 16 << 20)) || die "the image holds $before bytes after 16 MiB were written"
blkdiscard -o 0 -l $((8 << 20)) /dev/ufile
after=$(allocated_bytes "$img")
((after <= before - (8 << 20))) || die "discard freed $((before - after)) bytes of the image, not 8 MiB"
blkdiscard -z -o $((8 << 20)) -l $((4 << 20)) /dev/ufile
cmp -n $((4 << 20)) <(dd if=/dev/ufile bs=1M skip=8 count=4 iflag=direct status=none) /dev/zero ||
  die "write zeroes left data"
# A signal destroys the disk only once it is unmounted (as with dblock.ko).
mkfs.ext4 -q /dev/ufile
mount /dev/ufile "$mnt"
kill -TERM "$SERVE_PID"
deadline=$((SECONDS + 30))
until grep -q "got SIGTERM, destroying /dev/ufile" /tmp/serve-ufile.log; do
  ((SECONDS < deadline)) || die "the server did not take SIGTERM"
  sleep 0.1
done
# The disk still takes writes: sync fails if it went.
write_files "$mnt/data" 5
sync -f "$mnt/data/big" || die "the mounted disk failed after SIGTERM"
umount "$mnt"
wait_exit "$SERVE_PID" 60
wait_gone /dev/ufile 10
wait_gone "/dev/ublkb$n" 10

# 2b. Where ublk resizes (6.14 and later), the backend grows before the disk:
# one that cannot (past its --size-limit) refuses the resize, and dblockctl
# says why in one line, the disk and the file unchanged; within the limit the
# file and the disk grow.
if ((kmajor > 6 || (kmajor == 6 && kminor >= 14))); then
  truncate -s 64M "$img"
  start_serve ulim --transport ublk --backend "file:$img" --size-limit 80M --queues 1
  rc=0
  out=$("$DBLOCKCTL" resize ulim 96M 2>&1) || rc=$?
  assert_eq 1 "$rc" "exit code of dblockctl resize past the backend's limit"
  assert_eq 1 "$(wc -l <<<"$out")" "lines of output of dblockctl resize: $out"
  grep -q "grow $img to $((96 << 20)) bytes: .*(beyond its size limit of $((80 << 20)) bytes)" \
    <<<"$out" || die "dblockctl resize past the limit: not the backend's reason in: $out"
  assert_eq $((64 << 20)) "$(blockdev --getsize64 /dev/ulim)" "size of /dev/ulim after a refused grow"
  assert_eq $((64 << 20)) "$(stat -c %s "$img")" "size of the file after a refused grow"
  "$DBLOCKCTL" resize ulim 80M
  assert_eq $((80 << 20)) "$(blockdev --getsize64 /dev/ulim)" "size of /dev/ulim after a grow"
  assert_eq $((80 << 20)) "$(stat -c %s "$img")" "size of the file after a grow"
  stop_ublk ulim
fi

# 3. A server killed (SIGKILL) cannot delete its device: dblockctl destroy
# does, and its /dev/NAME link with it.
start_serve ukill --backend ram --size 64M
n=$(ublk_of ukill)
kill -KILL "$SERVE_PID"
wait "$SERVE_PID" 2>/dev/null || true
"$DBLOCKCTL" destroy ukill
wait_gone /dev/ukill 10
wait_gone "/dev/ublkc$n" 10

# 4. The 'wait' policy over ublk (UBLK_F_USER_RECOVERY_REISSUE): with ext4
# mounted and fio verifying files on it, the server is killed (SIGKILL): the
# disk stays and its I/O waits; a new server takes it over (--attach), and
# after a second kill another (--create-or-attach); that one is sent SIGUSR1
# (a handover: it answers what it took and exits 0) and a fourth attaches.
# fio ends with no I/O or verify error, a read issued with no server
# completes, fsync'd files read back from the backend, e2fsck -fn is clean.
io_errors() { dmesg | grep -cE "I/O error.*dev ublkb$1|EXT4-fs error.*ublkb$1|Buffer I/O error on dev ublkb$1" || true; }
# list_of NAME: "id name state server" as dblockctl lists it.
list_of() { "$DBLOCKCTL" list -n -o id,name,state,server | tr -s ' ' | sed 's/^ //' | grep " $1 "; }
# kill_and_hold N [SIGNAL]: SIGKILL the server of ublkbN (or hand it over:
# USR1, after which it must exit 0 saying so); the kernel keeps the disk with
# no server (listed with no server) and holds a read issued now.
kill_and_hold() {
  local dead=$SERVE_PID start=$SECONDS sig=${2:-KILL}
  kill -"$sig" "$dead"
  if [[ $sig == USR1 ]]; then
    wait_exit "$dead" 60
    grep -q "handed /dev/utk over, exiting" /tmp/serve-utk.log ||
      { cat /tmp/serve-utk.log; die "the server did not say it handed /dev/utk over"; }
    [[ -L /dev/utk ]] || die "/dev/utk went with a handover"
  else
    wait "$dead" 2>/dev/null || true
  fi
  # The kernel quiesces the disk once the requests in flight are back: on
  # 6.12-rt only when they time out (30 s).
  until [[ $(list_of utk) == "$1 utk live -" ]]; do
    ((SECONDS < start + 90)) || die "ublkb$1 90 s after its server died: '$(list_of utk)'"
    sleep 0.2
  done
  [[ -b /dev/ublkb$1 ]] || die "/dev/ublkb$1 went with its server under the wait policy"
  dd if=/dev/utk of=/dev/null bs=4k count=1 skip=$((RANDOM)) iflag=direct status=none &
  held_pid=$!
  kill -0 "$fio_pid" 2>/dev/null || { cat /tmp/fio.ublk-takeover.out; die "fio ended while no server was attached"; }
  log "SIG$sig to server $dead under fio; ublkb$1 held with no server after $((SECONDS - start)) s"
}
# took_over N: the new server serves ublkbN, the held read completed.
took_over() {
  assert_eq "$1 utk live $SERVE_PID" "$(list_of utk)" "dblockctl list after the takeover"
  wait "$held_pid" || die "a read issued while no server was attached failed"
}

rm -f "$img" && truncate -s 256M "$img"
start_serve utk --transport ublk --backend "file:$img" --queues 2 --depth 32 --recovery wait
n=$(ublk_of utk)
"$DBLOCKCTL" list --json | grep -q '"recovery": "wait"' || die "ublkb$n is not listed with the wait policy"
mkfs.ext4 -q /dev/utk
mount /dev/utk "$mnt"
errors_before=$(io_errors "$n")
write_files "$mnt/synced" 16
sync -f "$mnt/synced/big"
start_fio_writers "$mnt" ublk-takeover 32M 24M

wait_writes utk $(($(disk_writes utk) + 1000)) ublk-takeover
kill_and_hold "$n"
# A server refuses a device that is served, and one made with 'fail'
# (tried while there is none: the check comes before anything changes).
start_serve utk --backend "file:$img" --attach
took_over "$n"
rc=0
out=$("$SERVE" utk --backend "file:$img" --attach 2>&1) || rc=$?
assert_eq 1 "$rc" "exit code of a second --attach"
assert_eq 1 "$(wc -l <<<"$out")" "lines of output of a second --attach: $out"
grep -q "served by pid $SERVE_PID" <<<"$out" || die "no 'served by' in: $out"
echo 3 >/proc/sys/vm/drop_caches
check_files "$mnt/synced"

wait_writes utk $(($(disk_writes utk) + 1000)) ublk-takeover
kill_and_hold "$n"
start_serve utk --backend "file:$img" --create-or-attach
took_over "$n"
grep -q "took over /dev/utk -> /dev/ublkb$n, ublk" /tmp/serve-utk.log || die "--create-or-attach did not take over"
wait_writes utk $(($(disk_writes utk) + 1000)) ublk-takeover
kill_and_hold "$n" USR1
start_serve utk --backend "file:$img" --attach
took_over "$n"
wait_writes utk $(($(disk_writes utk) + 1000)) ublk-takeover
check_fio_writers ublk-takeover
assert_eq "$errors_before" "$(io_errors "$n")" "I/O or ext4 errors of ublkb$n in the kernel log"
check_files "$mnt/synced"
umount "$mnt"
e2fsck -fn /dev/utk || die "e2fsck found errors after the takeovers"
stop_ublk utk

# A device made with 'fail' is not handed over (SIGUSR1 refused in one line
# with the fix, the server stays), and cannot be taken over: its I/O failed.
start_serve ufail --backend "file:$img"
kill -USR1 "$SERVE_PID"
deadline=$((SECONDS + 30))
until grep -q "not handing /dev/ufail over: its recovery policy is 'fail'.*(fix: .*--recovery wait)$" \
  /tmp/serve-ufail.log; do
  ((SECONDS < deadline)) || { cat /tmp/serve-ufail.log; die "no refusal of SIGUSR1"; }
  sleep 0.1
done
kill -0 "$SERVE_PID" 2>/dev/null || die "the server exited on SIGUSR1"
dd if=/dev/urandom of=/dev/ufail bs=64k count=4 oflag=direct status=none ||
  die "/dev/ufail failed a write after a refused handover"
kill -KILL "$SERVE_PID"
wait "$SERVE_PID" 2>/dev/null || true
rc=0
out=$("$SERVE" ufail --backend "file:$img" --attach 2>&1) || rc=$?
assert_eq 1 "$rc" "exit code of --attach to a 'fail' device"
assert_eq 1 "$(wc -l <<<"$out")" "lines of output of --attach to a 'fail' device: $out"
grep -q "recovery policy is 'fail'" <<<"$out" || die "no reason in: $out"
"$DBLOCKCTL" destroy ufail
wait_gone /dev/ufail 10
# Nothing to take over: one line, nothing made.
rc=0
out=$("$SERVE" unone --backend "file:$img" --attach 2>&1) || rc=$?
assert_eq 1 "$rc" "exit code of --attach to no device"
assert_eq 1 "$(wc -l <<<"$out")" "lines of output of --attach to no device: $out"
grep -q "no ublk device has that name" <<<"$out" || die "no reason in: $out"
[[ ! -e /dev/unone ]] || die "/dev/unone exists after a refused --attach"

# 5. What only dblock.ko does is refused in one line, before anything
# exists: as a usage error (2) when --transport ublk is given, by the library
# (1) when auto chose ublk.
# refused CODE ARGS...
refused() {
  local code=$1 rc=0 out
  shift
  out=$("$SERVE" urefused --backend file:"$img" "$@" 2>&1) || rc=$?
  assert_eq "$code" "$rc" "exit code of dblock-serve $*"
  assert_eq 1 "$(wc -l <<<"$out")" "lines of output of dblock-serve $*: $out"
  grep -q "transport dblock" <<<"$out" || die "no fix in: $out"
  [[ ! -e /dev/urefused ]] || die "/dev/urefused exists after a refusal"
}
refused 2 --transport ublk --recovery wait --grace 30s
refused 1 --recovery wait --grace 30s
refused 2 --transport ublk --timeout 5s
refused 1 --timeout 5s
left=$(find /dev -maxdepth 1 -name 'ublkc*')
[[ -z $left ]] || die "ublk devices left: $left"

# 6. Without the driver, the error says how to load it.
unload_dblock
rc=0
out=$("$SERVE" unomod --transport ublk --backend ram --size 64M 2>&1) || rc=$?
assert_eq 1 "$rc" "exit code without ublk_drv"
grep -q "(fix: load the kernel.s ublk driver: sudo modprobe ublk_drv)$" <<<"$out" || die "no fix in: $out"
log "without ublk_drv: $out"
