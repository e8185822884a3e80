#!/bin/bash
# fio with crc32c verification at queue depth 32, one job per queue, on
# direct and buffered I/O, with block sizes from 4 KiB to past the largest
# I/O (the block layer splits those across requests).
# dblock-transports: dblock ublk
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../dblock-lib.sh"

command -v fio >/dev/null || die "fio is not installed"
load_dblock
queues=2
start_sample fiodev --size 256M --queues $queues --depth 32 --max-io 128K
for rw in randwrite write; do
  fio_verify /dev/fiodev $rw --rw=$rw --bsrange=4k-512k --iodepth=32 --numjobs=$queues \
    --size=96M --offset_increment=100M
done
fio --name=buffered --filename=/dev/fiodev --ioengine=psync --direct=0 \
  --rw=randrw --bs=4k --size=32M --verify=crc32c --verify_fatal=1 \
  --fsync_on_close=1 --output-format=terse >/tmp/fio.buf.out \
  || { cat /tmp/fio.buf.out; die "buffered fio verify failed"; }
# The seed leaked in-flight counters; these must be back to zero.
assert_eq "0 0" "$(awk '{print $1, $2}' "$(disk_sysfs fiodev)"/inflight)" "in flight after fio"
"$DBLOCKCTL" destroy fiodev
wait_exit "$SAMPLE_PID" 30
unload_dblock
