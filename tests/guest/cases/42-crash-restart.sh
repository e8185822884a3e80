#!/bin/bash
# A crash of the server on a file backend, under each recovery policy:
# fsync'd data must survive the server's SIGKILL and a restart on the same
# backing file.
#   wait: the new server attaches with ext4 still mounted;
#   fail: the mounted filesystem sees I/O errors, is unmounted, the device is
#         destroyed and made anew on the same file; mount replays the journal.
# Either way the fsync'd files read back (caches dropped) and the
# filesystem's check is clean.  Run for ext4 and XFS.
# dblock-timeout: 900
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../dblock-lib.sh"

img=/tmp/crash.img mnt=/tmp/crashmnt

mkfs_fs() { # FS DEV
  case $1 in
  ext4) mkfs.ext4 -q "$2" ;;
  xfs) mkfs.xfs -q -f "$2" ;;
  esac
}

check_fs() { # FS DEV
  case $1 in
  ext4) e2fsck -fn "$2" ;;
  xfs) xfs_repair -n "$2" ;;
  esac
}

# Unsynced writes keep going while the server dies.
start_scribbler() {
  (
    i=0
    while :; do
      head -c 1M /dev/urandom >"$mnt/scratch$((i % 16))" 2>/dev/null || true
      i=$((i + 1))
    done
  ) &
  scribbler=$!
}

stop_scribbler() {
  pkill -KILL -P "$scribbler" 2>/dev/null || true
  kill -KILL "$scribbler" 2>/dev/null || true
  wait "$scribbler" 2>/dev/null || true
}

# umount, retried while a killed writer lets go of its files.
umount_retry() {
  local i
  for ((i = 0; i < 50; i++)); do
    umount "$mnt" 2>/dev/null && return 0
    sleep 0.2
  done
  fuser -vm "$mnt" >&2 || true
  return 1
}

load_dblock
mkdir -p "$mnt"
for fs in ext4 xfs; do
  for policy in wait fail; do
    name=cr-$fs-$policy
    log "$fs, recovery $policy"
    rm -f "$img" && truncate -s 512M "$img"
    start_serve "$name" --backend "file:$img" --recovery "$policy"
    mkfs_fs "$fs" "/dev/$name"
    mount "/dev/$name" "$mnt"
    write_files "$mnt/synced" 12
    sync -f "$mnt/synced/big"
    start_scribbler
    sleep 2
    kill -KILL "$SERVE_PID"
    wait "$SERVE_PID" 2>/dev/null || true
    log "$name: server killed; requeued $(cat /sys/block/$name/dblock/requeued)"

    if [[ $policy == wait ]]; then
      start_serve "$name" --backend "file:$img" --attach
      stop_scribbler
      echo 3 >/proc/sys/vm/drop_caches
      check_files "$mnt/synced"
      umount "$mnt"
    else
      # The device fails I/O at once: nothing may hang.
      stop_scribbler
      umount_retry || die "$name: umount after the crash failed"
      "$DBLOCKCTL" destroy "$name"
      wait_gone "/dev/$name" 10
      start_serve "$name" --backend "file:$img"
      mount "/dev/$name" "$mnt"
      check_files "$mnt/synced"
      umount "$mnt"
    fi
    check_fs "$fs" "/dev/$name" || die "$name: $fs check failed after the crash"
    "$DBLOCKCTL" destroy "$name"
    wait_exit "$SERVE_PID" 30
  done
done
rm -f "$img"
unload_dblock
