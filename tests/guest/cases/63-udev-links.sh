#!/bin/bash
# fstab by UUID and LABEL: with a real udevd and the project's rule
# (packaging/udev/60-dblock.rules), a dblock disk and its partitions get the
# /dev/disk/by-uuid, by-label, by-partuuid and by-partlabel links that
# Debian's rules give only to the kernel names they know.  mkfs and sfdisk
# are followed (the rule's "watch"); an fstab entry by UUID= and one by
# LABEL= mount; destroying the device removes its links.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../dblock-lib.sh"

top=$(cd "$(dirname "$0")/../../.." && pwd)
udevd=""
for f in /lib/systemd/systemd-udevd /usr/lib/systemd/systemd-udevd; do
  [[ -x $f ]] && udevd=$f && break
done
[[ -n $udevd ]] || die "no systemd-udevd in this root (Debian's udev package)"

# The guest runs the suite in a chroot, where udevadm would do nothing.
export SYSTEMD_IGNORE_CHROOT=1
stop_udevd() { udevadm control --exit 2>/dev/null || true; }
case_cleanup() { stop_udevd; }  # after cleanup_dblock's unmounts
load_dblock
mkdir -p /run/udev/rules.d /tmp/mnt-uuid /tmp/mnt-label /tmp/mnt-part
cp "$top/packaging/udev/60-dblock.rules" /run/udev/rules.d/
"$udevd" --daemon
udevadm settle --timeout=30

# link_of PATH: where a /dev/disk link points, or nothing.
link_of() { readlink -f "$1" 2>/dev/null || true; }
# expect_link LINK TARGET: udev made LINK, pointing at TARGET.
expect_link() {
  udevadm settle --timeout=30
  assert_eq "$2" "$(link_of "$1")" "udev link $1"
}

start_sample ulinks --size 96M
expect_link /dev/disk/by-id/dblock-ulinks /dev/ulinks

# A whole-disk file system: the links come after mkfs, through "watch".
uuid=$(cat /proc/sys/kernel/random/uuid)
mkfs.ext4 -q -U "$uuid" -L dbwhole /dev/ulinks
expect_link "/dev/disk/by-uuid/$uuid" /dev/ulinks
expect_link /dev/disk/by-label/dbwhole /dev/ulinks
printf 'UUID=%s /tmp/mnt-uuid ext4 defaults 0 0\nLABEL=dbwhole /tmp/mnt-label ext4 defaults 0 0\n' \
  "$uuid" >/tmp/fstab-udev
mount -T /tmp/fstab-udev /tmp/mnt-uuid
echo by-uuid >/tmp/mnt-uuid/f
umount /tmp/mnt-uuid
mount -T /tmp/fstab-udev /tmp/mnt-label
assert_eq by-uuid "$(cat /tmp/mnt-label/f)" "the file, mounted by LABEL="
umount /tmp/mnt-label

# Partitions: a GPT with named partitions replaces the file system.
printf 'label: gpt\nsize=32M, type=L, name=dbdata\ntype=L, name=dbspare\n' |
  sfdisk -q --wipe always /dev/ulinks
wait_for_path /dev/ulinks1 10
udevadm settle --timeout=30
[[ ! -e /dev/disk/by-uuid/$uuid ]] || die "/dev/disk/by-uuid/$uuid outlived its file system"
partuuid=$(sfdisk --part-uuid /dev/ulinks 1 | tr '[:upper:]' '[:lower:]')
expect_link "/dev/disk/by-partuuid/$partuuid" /dev/ulinks1
expect_link /dev/disk/by-partlabel/dbdata /dev/ulinks1
expect_link /dev/disk/by-partlabel/dbspare /dev/ulinks2
expect_link /dev/disk/by-id/dblock-ulinks-part2 /dev/ulinks2
puuid=$(cat /proc/sys/kernel/random/uuid)
mkfs.ext4 -q -U "$puuid" -L dbpart /dev/ulinks1
expect_link "/dev/disk/by-uuid/$puuid" /dev/ulinks1
expect_link /dev/disk/by-label/dbpart /dev/ulinks1
printf 'UUID=%s /tmp/mnt-part ext4 defaults 0 0\n' "$puuid" >/tmp/fstab-udev
mount -T /tmp/fstab-udev /tmp/mnt-part
findmnt -n -o SOURCE /tmp/mnt-part | grep -qx /dev/ulinks1 || die "UUID=$puuid did not mount /dev/ulinks1"
umount /tmp/mnt-part

# Gone with the device.
"$DBLOCKCTL" destroy ulinks
wait_exit "$SAMPLE_PID" 30
udevadm settle --timeout=30
for l in "/dev/disk/by-uuid/$puuid" /dev/disk/by-label/dbpart "/dev/disk/by-partuuid/$partuuid" \
  /dev/disk/by-partlabel/dbspare /dev/disk/by-id/dblock-ulinks; do
  [[ ! -e $l && ! -L $l ]] || die "$l outlived the device"
done
stop_udevd
unload_dblock
