#!/bin/bash
# examples/xor_disk.cc: a disk stored XORed in a file.  Serve it, mkfs.ext4,
# mount, write, unmount; the backing file must not contain the plaintext;
# e2fsck clean; destroy; the server exits 0.
# dblock-transports: dblock ublk
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../dblock-lib.sh"

XOR=$DBLOCK_BIN/dblock_example_xor
[[ -x $XOR ]] || die "no $XOR (build it: cmake --build build)"
load_dblock

truncate -s 64M /tmp/xor.img
"$XOR" xordisk /tmp/xor.img >/tmp/xor.log 2>&1 &
pid=$!
wait_for_path /dev/xordisk 30
assert_eq $((64 << 20)) "$(blockdev --getsize64 /dev/xordisk)" "size of /dev/xordisk"
mkfs.ext4 -q /dev/xordisk
mkdir -p /tmp/mnt
mount /dev/xordisk /tmp/mnt
marker="dblock-xor-plaintext-$RANDOM$RANDOM"
for i in $(seq 1 2000); do echo "$marker line $i"; done >/tmp/mnt/secret.txt
write_files /tmp/mnt/data 5
umount /tmp/mnt

grep -q "$marker" /tmp/xor.img && die "the backing file contains the plaintext"
# What is stored is the plaintext XOR 0x5a: undo it, and the marker is there.
python3 - "$marker" <<'PY' || die "the backing file does not hold the data XOR 0x5a"
import sys
data = open("/tmp/xor.img", "rb").read().translate(bytes(b ^ 0x5A for b in range(256)))
sys.exit(0 if sys.argv[1].encode() in data else 1)
PY
e2fsck -fn /dev/xordisk
mount /dev/xordisk /tmp/mnt
check_files /tmp/mnt/data
grep -c "$marker" /tmp/mnt/secret.txt | grep -qx 2000 || die "secret.txt differs"
umount /tmp/mnt

"$DBLOCKCTL" destroy xordisk
wait_exit "$pid" 30
wait_gone /dev/xordisk 10
cat /tmp/xor.log
unload_dblock
