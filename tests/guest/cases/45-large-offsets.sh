#!/bin/bash
# A 6 GiB device (the RAM backend is sparse): data written at offsets past 4 GiB,
# across the 4 GiB boundary and at the very end reads back identical, with direct and
# buffered I/O; nothing aliases to the offset modulo 4 GiB (a 32-bit truncation
# anywhere, kernel or server, shows up there); I/O past the end fails. Meant for
# 32-bit kernels and userspace (armhf, i386), valid everywhere.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../dblock-lib.sh"

load_dblock
start_sample bigdev --size 6G
dev=/dev/bigdev
G=$((1024 * 1024 * 1024))
assert_eq $((6 * G)) "$(blockdev --getsize64 $dev)" "device size"

# put OFFSET LENGTH FLAG: writes LENGTH random bytes at byte OFFSET (FLAG: direct or
# "" for buffered), reads them back (page cache dropped first) and compares.
put() {
  local off=$1 len=$2 flag=$3 f
  f=/tmp/chunk.$off
  head -c "$len" /dev/urandom >"$f"
  dd if="$f" of=$dev bs=4096 seek="$off" oflag=seek_bytes${flag:+,$flag} conv=notrunc,fsync status=none
  sync
  echo 3 >/proc/sys/vm/drop_caches
  assert_eq "$(sha256sum <"$f")" \
    "$(dd if=$dev bs=4096 skip="$off" count="$len" iflag=skip_bytes,count_bytes${flag:+,$flag} status=none | sha256sum)" \
    "data at offset $off ($len bytes, ${flag:-buffered})"
  log "ok: $len bytes at $off (${flag:-buffered})"
}

zeros_at() {
  local off=$1 len=$2
  assert_eq "$(head -c "$len" /dev/zero | sha256sum)" \
    "$(dd if=$dev bs=4096 skip="$off" count="$len" iflag=skip_bytes,count_bytes,direct status=none | sha256sum)" \
    "offset $off must still read zeros (aliasing of a 64-bit offset?)"
}

put $((4 * G - 64 * 1024)) $((128 * 1024)) direct   # across the 4 GiB boundary
put $((4 * G + 1024 * 1024)) $((1024 * 1024)) direct
put $((5 * G + 512 * 4096)) $((256 * 1024)) ""      # buffered, page cache index > 2^20
put $((6 * G - 1024 * 1024)) $((1024 * 1024)) direct # the last MiB
# Offsets modulo 4 GiB of the writes above were never written: they read zeros.
zeros_at 0 $((128 * 1024))
zeros_at $((1024 * 1024)) $((1024 * 1024))
zeros_at $((1 * G + 512 * 4096)) $((256 * 1024))
zeros_at $((2 * G - 1024 * 1024)) $((1024 * 1024))
# Past the end: no write may succeed.
if dd if=/dev/zero of=$dev bs=4096 seek=$((6 * G)) oflag=seek_bytes,direct count=1 status=none 2>/dev/null; then
  die "a write at the end of the device succeeded"
fi
# The first write is still intact after all that.
off=$((4 * G - 64 * 1024))
assert_eq "$(sha256sum </tmp/chunk.$off)" \
  "$(dd if=$dev bs=4096 skip=$off count=$((128 * 1024)) iflag=skip_bytes,count_bytes,direct status=none | sha256sum)" \
  "data across 4 GiB after the other writes"

"$DBLOCKCTL" destroy bigdev
wait_exit "$SAMPLE_PID" 30
unload_dblock
