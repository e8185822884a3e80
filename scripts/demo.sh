#!/bin/bash
# The main job: builds everything, boots a QEMU guest on a Debian kernel,
# loads dblock.ko, serves /dev/dblockramdisk from dblock_sample_ramdisk,
# makes ext4 on it, mounts and uses it, destroys it with `-d`, and shows
# that the server exited cleanly.  Prints the transcript.
# DBLOCK_DEMO_KERNEL selects the kernel line: 6.12 (default) or 6.1.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cache=${DBLOCK_VM_CACHE:-/var/cache/dblock-vm}
line=${DBLOCK_DEMO_KERNEL:-6.12}

"$top/scripts/install-deps.sh"
cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$top/build" -j "$(nproc)" >/dev/null
"$top/vm/prepare-kernels.sh" "$line"
# shellcheck source=/dev/null
. "$cache/$line.env"
"$top/scripts/build-module.sh" "$KDIR" "/var/tmp/dblock-kmod/$KVER" >/dev/null

exec "$top/vm/run-guest.sh" --kernel "$line" -- "$top/scripts/demo-in-guest.sh" \
	"/var/tmp/dblock-kmod/$KVER/dblock.ko"
