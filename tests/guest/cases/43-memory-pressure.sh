#!/bin/bash
# Serving under memory pressure: all but 256 MiB of the guest's memory is
# pinned in a tmpfs (no swap: it cannot be reclaimed), dirty limits are
# raised (60%/40%) so that the page cache fills with dirty data of the
# dblock device, and a buffered writer pushes more than the free memory
# through ext4.  (With 160 MiB left and 90%/80%, 6.12 guests on a busy host
# spent 20+ s in the page allocator, outside dblock, and tripped the
# soft-lockup detector.)  Reclaim must
# write back through the server (mlocked, an I/O flusher) without deadlock:
# the writes finish, a read-back after dropping caches verifies, and the
# kernel log has no hung task.  The backing file is on tmpfs and allocated
# in full before memory is pinned, so that storing the data needs no new
# memory: what is measured is dblock's path, not the backing store's.
# dblock-timeout: 900
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../dblock-lib.sh"

command -v fio >/dev/null || die "fio is not installed"
name=mp mnt=/tmp/mpmnt fill=/tmp/mpfill store=/tmp/mpstore img=/tmp/mpstore/memory-pressure.img

# Run by cleanup_dblock (dblock-lib.sh) on any exit.
case_cleanup() {
  umount "$fill" 2>/dev/null || true
  umount "$store" 2>/dev/null || true
}

load_dblock
# A tmpfs of its own: the guest's /tmp may be smaller (half the memory).
mkdir -p "$store" && mount -t tmpfs -o size=600M tmpfs "$store"
fallocate -l 512M "$img"
start_serve "$name" --backend "file:$img" --queues 2 --depth 32 --mlock
locked_kb=$(awk '/^VmLck/ {print $2}' "/proc/$SERVE_PID/status")
((locked_kb > 0)) || die "the server's memory is not locked (VmLck $locked_kb kB)"
# No discards and no lazy zeroing later: either would punch holes in the file.
mkfs.ext4 -q -E nodiscard,lazy_itable_init=0,lazy_journal_init=0 "/dev/$name"
fallocate -l 512M "$img"
mkdir -p "$mnt" && mount "/dev/$name" "$mnt"

old_ratio=$(sysctl -n vm.dirty_ratio) old_bg=$(sysctl -n vm.dirty_background_ratio)
sysctl -q vm.dirty_ratio=60 vm.dirty_background_ratio=40
avail_mb=$(($(awk '/^MemAvailable/ {print $2}' /proc/meminfo) / 1024))
fill_mb=$((avail_mb - 256))
((fill_mb > 0)) || die "only $avail_mb MiB available"
mkdir -p "$fill" && mount -t tmpfs -o size=100% tmpfs "$fill"
dd if=/dev/zero of="$fill/pin" bs=1M count="$fill_mb" status=none
left_mb=$(($(awk '/^MemAvailable/ {print $2}' /proc/meminfo) / 1024))
write_mb=$((left_mb * 2 > 320 ? left_mb * 2 : 320))
write_mb=$((write_mb > 400 ? 400 : write_mb)) # the file system holds 512 MiB
log "pinned $fill_mb MiB; $left_mb MiB available; writing $write_mb MiB buffered"

fio --name=pressure --filename="$mnt/data" --ioengine=psync --direct=0 --rw=write \
  --bs=1M --size="${write_mb}M" --end_fsync=1 --verify=crc32c --do_verify=0 \
  --output-format=terse >/tmp/fio.mp.out 2>&1 &
fio_pid=$!
# Builtins only while memory is short: a fork would itself need memory
# (copy-on-write faults) and stall in reclaim like any other process.
mkfifo /tmp/mp.tick
exec {tick}<>/tmp/mp.tick
peak_dirty=0
while kill -0 "$fio_pid" 2>/dev/null; do
  while read -r key value _; do
    if [[ $key == Dirty: ]]; then
      ((value > peak_dirty)) && peak_dirty=$value
      break
    fi
  done </proc/meminfo
  read -r -t 0.5 -u "$tick" _ || true # a sleep without a fork
done
exec {tick}>&-
wait "$fio_pid" || { cat /tmp/fio.mp.out; die "buffered writes under memory pressure failed"; }
log "writes done; peak Dirty $((peak_dirty / 1024)) MiB; $(grep -E '^(MemFree|MemAvailable):' /proc/meminfo | tr -s ' ' | tr '\n' ' ')"

echo 3 >/proc/sys/vm/drop_caches
fio --name=pressure --filename="$mnt/data" --ioengine=psync --direct=0 --rw=write \
  --bs=1M --size="${write_mb}M" --verify=crc32c --verify_only --verify_fatal=1 \
  --output-format=terse >/tmp/fio.mp.verify 2>&1 ||
  { cat /tmp/fio.mp.verify; die "data written under memory pressure did not verify"; }

kill -0 "$SERVE_PID" 2>/dev/null || die "the server died under memory pressure"
umount "$fill"
sysctl -q vm.dirty_ratio="$old_ratio" vm.dirty_background_ratio="$old_bg"
umount "$mnt"
e2fsck -fn "/dev/$name" || die "e2fsck found errors"
"$DBLOCKCTL" destroy "$name"
wait_exit "$SERVE_PID" 30
case_cleanup
unload_dblock
