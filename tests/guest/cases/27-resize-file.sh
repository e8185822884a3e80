#!/bin/bash
# Online resize of a device served by dblock-serve from a file (a backend
# that may block, run on worker threads): growing the device grows the file,
# data written past the old end reads back through the disk and lies in the
# file; shrinking it shrinks the file and keeps the data below the new end.
# dblock-transports: dblock ublk
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../dblock-lib.sh"

need_online_resize
load_dblock
truncate -s 64M /tmp/x.img
start_serve rsfile --backend file:/tmp/x.img
assert_disk_size rsfile 64
check_grow rsfile 96
assert_eq $((96 << 20)) "$(stat -c %s /tmp/x.img)" "size of the backing file after growing"
cmp -n $((1 << 20)) /tmp/resize-rsfile.65 <(dd if=/tmp/x.img bs=1M skip=65 count=1 status=none) ||
  die "the backing file does not hold what was written past the old end"
check_shrink rsfile 80
assert_eq $((80 << 20)) "$(stat -c %s /tmp/x.img)" "size of the backing file after shrinking"
cmp -n $((1 << 20)) /tmp/resize-rsfile.79 <(dd if=/tmp/x.img bs=1M skip=79 count=1 status=none) ||
  die "the backing file does not hold what was written below the new end"
"$DBLOCKCTL" destroy rsfile
wait_exit "$SERVE_PID" 30
cat /tmp/serve-rsfile.log
unload_dblock
