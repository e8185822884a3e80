#!/bin/bash
# libdblock over the kernel's ublk instead of dblock.ko (dblock-serve
# --transport ublk; auto picks it when dblock.ko is not loaded): the seed flow
# (ext4, files, e2fsck, remount), fio verify at QD32 on two queues, discard
# and write zeroes reaching a file backend, SIGTERM deleting the device and its
# /dev/NAME link with the server exiting 0, and one-line errors for what only
# dblock.ko does.  Skipped where the kernel has no ublk_drv (Debian 12's 6.1).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../dblock-lib.sh"

# shellcheck disable=SC2034 # read by dblock-lib.sh
DBLOCK_TRANSPORT=ublk
load_dblock  # ublk_drv, without dblock.ko; exits 77 where there is none
mnt=/tmp/ublk-mnt
mkdir -p "$mnt"
img=/tmp/ublk-case.img
case_cleanup() { umount -l "$mnt" 2>/dev/null; rm -f "$img"; }

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

# 3. A server killed (SIGKILL) cannot delete its device: dblockctl destroy
# does, and its /dev/NAME link with it.
start_serve ukill --backend ram --size 64M
n=$(ublk_of ukill)
kill -KILL "$SERVE_PID"
wait "$SERVE_PID" 2>/dev/null || true
"$DBLOCKCTL" destroy ukill
wait_gone /dev/ukill 10
wait_gone "/dev/ublkc$n" 10

# 4. What only dblock.ko does is refused in one line, before anything
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
refused 2 --transport ublk --attach
refused 2 --transport ublk --recovery wait
refused 1 --recovery wait
left=$(find /dev -maxdepth 1 -name 'ublkc*')
[[ -z $left ]] || die "ublk devices left: $left"

# 5. Without the driver, the error says how to load it.
unload_dblock
rc=0
out=$("$SERVE" unomod --transport ublk --backend ram --size 64M 2>&1) || rc=$?
assert_eq 1 "$rc" "exit code without ublk_drv"
grep -q "(fix: load the kernel.s ublk driver: sudo modprobe ublk_drv)$" <<<"$out" || die "no fix in: $out"
log "without ublk_drv: $out"
