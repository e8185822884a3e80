#!/bin/bash
# A file backend with O_DIRECT on a block device (brd), part of it
# (--offset, --size-limit), every way dblock-serve runs its requests: the
# default (--aio auto: on dblock.ko the module reads and writes the file
# itself, on the requests' pages; over ublk io_uring), io_uring in the server
# and worker threads.
# Each way: fio verify at queue depth 32 with flushes, data found where it
# belongs on the backing device, an ext4 written, checked and read back after
# a new server took the device over, SIGTERM destroys it.  Where the kernel has
# kernel.io_uring_disabled: with io_uring refused, --aio auto falls back to
# threads and says so, and --aio io_uring fails with the fix.  Over ublk too
# (where io_uring puts the file's I/O in the queue's own ring), but for the
# refusal: ublk itself is io_uring.
# dblock-transports: dblock ublk
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../dblock-lib.sh"

command -v fio >/dev/null || die "fio is not installed"
load_dblock
modprobe brd rd_nr=1 rd_size=$((320 * 1024)) max_part=0
wait_for_path /dev/ram0 10
mkdir -p /tmp/mnt
offset=$((32 << 20))

for aio in auto io_uring threads; do
  name=dio${aio%%_*}
  common=(--backend file:/dev/ram0 --direct-io --aio "$aio" --offset 32M --size-limit 256M)
  start_serve "$name" "${common[@]}" --recovery wait --queues 2 --depth 32 --max-io 512K
  assert_disk_size "$name" 256
  case $aio in
    auto)
      want="O_DIRECT, io_uring)"
      [[ $DBLOCK_TRANSPORT == ublk ]] || want="O_DIRECT, io_uring; reads and writes by dblock.ko)" ;;
    io_uring) want="O_DIRECT, io_uring)" ;;
    threads) want="O_DIRECT, worker threads)" ;;
  esac
  want="file:/dev/ram0, from byte $offset, $want"
  grep -qF "$want" "/tmp/serve-$name.log" || { cat "/tmp/serve-$name.log"; die "no '$want' in the serving line"; }

  fio --name=verify --filename="/dev/$name" --ioengine=libaio --direct=1 --rw=randwrite \
    --bsrange=4k-256k --iodepth=32 --size=128M --fsync=16 --verify=crc32c --verify_fatal=1 \
    --do_verify=1 --output-format=terse >"/tmp/fio.$name.out" ||
    { cat "/tmp/fio.$name.out"; die "fio verify on $aio failed"; }
  log "fio $aio: $(grep -v '^fio:' "/tmp/fio.$name.out" | cut -d';' -f3,4 | head -1)"
  if [[ $DBLOCK_TRANSPORT == dblock ]]; then
    # Who did the reads and writes: dblock.ko on the file (auto), or the server.
    file_ios=$(cat "/sys/block/$name/dblock/file_ios")
    if [[ $aio == auto ]]; then
      ((file_ios > 1000)) || die "auto: only $file_ios reads and writes by dblock.ko on the file"
      assert_eq /dev/ram0 "$(cat "/sys/block/$name/dblock/file")" "/sys/block/$name/dblock/file"
    else
      assert_eq 0 "$file_ios" "$aio: reads and writes by dblock.ko"
    fi
  fi

  # A FUA write lands at --offset + its position on the backing device.
  head -c 1M /dev/urandom >/tmp/pattern
  dd if=/tmp/pattern of="/dev/$name" bs=1M seek=200 oflag=direct,dsync status=none
  cmp /tmp/pattern <(dd if=/dev/ram0 bs=1M skip=$((200 + 32)) count=1 iflag=direct status=none) ||
    die "$aio: the data is not at offset + 200 MiB of /dev/ram0"

  mkfs.ext4 -q -F "/dev/$name"
  mount "/dev/$name" /tmp/mnt
  write_files /tmp/mnt/data 10
  umount /tmp/mnt
  # A new server takes the device over (same way), and the files are intact.
  kill -KILL "$SERVE_PID"
  wait "$SERVE_PID" 2>/dev/null || true # SIGKILLed: its status is not the check
  start_serve "$name" "${common[@]}" --attach
  e2fsck -fn "/dev/$name"
  mount "/dev/$name" /tmp/mnt
  check_files /tmp/mnt/data
  umount /tmp/mnt
  # SIGTERM reaches serve(), whatever threads the backend started: the
  # device is destroyed and the server exits 0.
  kill -TERM "$SERVE_PID"
  wait_exit "$SERVE_PID" 30
  wait_gone "/dev/$name" 10
  grep -q "got SIGTERM, destroying /dev/$name" "/tmp/serve-$name.log" ||
    { cat "/tmp/serve-$name.log"; die "$aio: SIGTERM did not destroy /dev/$name"; }
done

if [[ $DBLOCK_TRANSPORT == ublk ]]; then
  log "over ublk, which needs io_uring itself, io_uring's refusal is not exercised"
elif [[ -w /proc/sys/kernel/io_uring_disabled ]]; then
  # Back to 0 however the case ends: the next case (28@ublk) needs io_uring.
  case_cleanup() { echo 0 >/proc/sys/kernel/io_uring_disabled; }
  echo 2 >/proc/sys/kernel/io_uring_disabled
  start_serve dionone --backend file:/dev/ram0 --direct-io --size-limit 64M
  grep -q "io_uring_queue_init for /dev/ram0: Operation not permitted (io_uring is not allowed here" \
    /tmp/serve-dionone.log || { cat /tmp/serve-dionone.log; die "auto did not say why io_uring was left"; }
  # Without io_uring, dblock.ko still does the reads and writes on the file.
  grep -qF "O_DIRECT, worker threads; reads and writes by dblock.ko)" /tmp/serve-dionone.log ||
    { cat /tmp/serve-dionone.log; die "auto did not fall back to worker threads and dblock.ko's file I/O"; }
  dd if=/tmp/pattern of=/dev/dionone bs=1M seek=3 oflag=direct status=none
  cmp /tmp/pattern <(dd if=/dev/ram0 bs=1M skip=3 count=1 iflag=direct status=none) ||
    die "threads after the fallback: the data is not on /dev/ram0"
  "$DBLOCKCTL" destroy dionone
  wait_exit "$SERVE_PID" 30
  rc=0
  out=$("$SERVE" diorefused --backend file:/dev/ram0 --direct-io --aio io_uring --size-limit 64M 2>&1) || rc=$?
  echo 0 >/proc/sys/kernel/io_uring_disabled
  log "--aio io_uring with io_uring disabled -> rc=$rc: $out"
  assert_eq 1 "$rc" "exit code of dblock-serve --aio io_uring with io_uring disabled"
  grep -q "fix: serve the file on worker threads, dblock-serve --aio threads)$" <<<"$out" ||
    die "no fix in: $out"
  [[ ! -e /dev/diorefused ]] || die "a device was left behind"
else
  log "$(uname -r) has no kernel.io_uring_disabled (Linux 6.6+): the refusal is not exercised here"
fi

rmmod brd
unload_dblock
