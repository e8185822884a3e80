#!/bin/bash
# Eight devices at once, each with its own server, shape and data; each
# holds only its own data; all destroyed; the module unloads.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../dblock-lib.sh"

load_dblock
bs=(512 1024 2048 4096 512 1024 2048 4096)
declare -A pids
for i in $(seq 0 7); do
  start_sample "many$i" --size $(((i + 1) * 8))M --block-size "${bs[$i]}" \
    --queues $((i % 2 + 1)) --depth $((8 << (i % 3)))
  pids[$i]=$SAMPLE_PID
done
assert_eq 8 "$("$DBLOCKCTL" list --json | grep -c '"name"')" "devices listed"

for i in $(seq 0 7); do
  assert_eq $(((i + 1) * 8 * 1024 * 1024)) "$(blockdev --getsize64 /dev/many$i)" "size of many$i"
  assert_eq "${bs[$i]}" "$(blockdev --getss /dev/many$i)" "block size of many$i"
  # Distinct content per device, written through the page cache.
  head -c $((4 << 20)) < <(yes "device $i") >/tmp/pattern$i
  dd if=/tmp/pattern$i of=/dev/many$i bs=64K conv=fsync status=none
done
for i in $(seq 0 7); do
  echo 3 >/proc/sys/vm/drop_caches
  cmp <(head -c $((4 << 20)) /dev/many$i) /tmp/pattern$i || die "many$i holds other data"
done
for i in $(seq 0 7); do
  "$DBLOCKCTL" destroy "many$i"
  wait_exit "${pids[$i]}" 30
done
unload_dblock
