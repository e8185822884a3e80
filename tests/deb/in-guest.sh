#!/bin/bash
# In a guest whose root is writable (vm/run-guest.sh --root overlay; tests/deb/run.sh):
# the Debian packages as a user installs them, `apt install ./*.deb`.  dblock-dkms's
# postinst has DKMS build dblock.ko for the running kernel; modprobe loads it; the
# tools serve a file-backed disk with ext4 on it; `apt-get remove --purge` of the four
# leaves nothing behind.
# Usage: in-guest.sh DEBDIR VERSION
set -euo pipefail
. "$(dirname "$0")/../guest/lib.sh"
debdir=$1 version=$2
kver=$(uname -r)
pkgs=(dblock-dkms libdblock0 libdblock-dev dblock-tools)
name=debtest
export DEBIAN_FRONTEND=noninteractive

installed() { [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null) == ii* ]]; }
# leftovers: what of dblock's lies where DKMS and the packages put it.
leftovers() {
  ls -d /usr/src/dblock-* /var/lib/dkms/dblock 2>/dev/null || true
  find "/usr/lib/modules/$kver" -name 'dblock.ko*' 2>/dev/null
}

# The root must be writable (the host's, read-only over 9p, is not).
probe=/usr/.dblock-deb-test.$$
: >"$probe" 2>/dev/null || die "/usr is read-only: run this with vm/run-guest.sh --root overlay"
rm -f "$probe"

debs=()
for p in "${pkgs[@]}"; do
  installed "$p" && die "$p is installed before the test (the host root has it: remove it there)"
  f=$(ls "$debdir/${p}_${version}_"*.deb) || die "no $p $version in $debdir"
  debs+=("$f")
done
before=$(leftovers)
[[ -z $before ]] || die "dblock is in the root before the test: $before"

# What the packages ship, and which of those paths exist already (/usr/bin...):
# after the purge, all the others must be gone.
shipped=$(for f in "${debs[@]}"; do dpkg-deb --fsys-tarfile "$f" | tar -t; done |
  sed 's|^\./|/|; s|/$||' | grep -v '^\.\?$' | sort -u)
preexisting=$(while read -r path; do if [[ -e $path || -L $path ]]; then echo "$path"; fi; done <<<"$shipped")
new_paths=$(comm -23 <(echo "$shipped") <(echo "$preexisting"))
[[ -n $new_paths ]] || die "the packages ship nothing new?"

# DKMS finds a kernel's headers through /lib/modules/KVER/build (the header
# package's link); the guest kernel's tree is an unpacked image, without it.
build_link=""
# On failure, the packages go (their postrm removes the DKMS build) and so does our link.
cleanup() {
  local rc=$?
  if ((rc != 0)); then
    apt-get remove --purge -y "${pkgs[@]}" >/dev/null 2>&1 || true
  fi
  if [[ -n $build_link ]]; then rm -f "$build_link"; fi
  return "$rc"
}
trap cleanup EXIT
if [[ ! -e /usr/lib/modules/$kver/build/Makefile ]]; then
  [[ -f /usr/src/linux-headers-$kver/Makefile ]] || die "no headers for $kver in /usr/src"
  ln -sfn "/usr/src/linux-headers-$kver" "/usr/lib/modules/$kver/build"
  build_link=/usr/lib/modules/$kver/build
fi

log "apt-get install ${debs[*]##*/}"
t0=$SECONDS
apt-get install -y --no-install-recommends -o APT::Sandbox::User=root "${debs[@]}" ||
  die "apt-get install of the packages failed"
log "installed in $((SECONDS - t0))s (DKMS build included)"
for p in "${pkgs[@]}"; do
  installed "$p" || die "$p is not installed after apt-get install"
  assert_eq "$version" "$(dpkg-query -W -f='${Version}' "$p")" "version of $p"
done

# The DKMS build, by the package's postinst, for this kernel.
status=$(dkms status -m dblock -v "$version" -k "$kver")
[[ $status == *": installed"* ]] || die "dkms status for $kver: '$status'"
ko=$(modinfo -n dblock) || die "modinfo does not find dblock for $kver"
[[ $ko == /lib/modules/$kver/updates/dkms/dblock.ko* || $ko == /usr/lib/modules/$kver/updates/dkms/dblock.ko* ]] ||
  die "modinfo finds $ko, not DKMS's module under updates/dkms"
assert_eq "$version" "$(modinfo -F version dblock)" "modinfo -F version dblock"
[[ $(modinfo -F vermagic dblock) == "$kver "* ]] || die "vermagic $(modinfo -F vermagic dblock), not $kver"
if grep -q '^dblock ' /proc/modules; then die "dblock is loaded before modprobe"; fi
modprobe dblock
wait_for_path /dev/dblockctl 10
assert_eq "$version" "$(cat /sys/module/dblock/version)" "/sys/module/dblock/version"
log "modprobe dblock: $ko"

# The packaged tools, from /usr/bin, on the packaged library.
for tool in dblockctl dblock-serve dblock_sample_ramdisk; do
  assert_eq "/usr/bin/$tool" "$(command -v "$tool")" "$tool's path"
  assert_eq "$tool (dblock) $version" "$("$tool" --version)" "$tool --version"
done
# (ld.so.cache may name it by /lib, merged into /usr/lib)
lib=$(ldd /usr/bin/dblock-serve | awk '$1 == "libdblock.so.0" {print $3}')
[[ -n $lib && $(readlink -f "$lib") == /usr/lib/*/libdblock.so.$version ]] ||
  die "dblock-serve finds libdblock.so.0 at '$lib', not the package's"
[[ -f /usr/lib/udev/rules.d/60-dblock.rules && -f /usr/lib/systemd/system/dblock@.service ]] ||
  die "udev rule or systemd unit missing"

# A file-backed disk with ext4: written, unmounted, mounted again, read back.
img=/tmp/deb-test.img
truncate -s 128M "$img"
dblock-serve "$name" --backend "file:$img" >/tmp/serve.log 2>&1 &
serve_pid=$!
deadline=$((SECONDS + 30))
until [[ -b /dev/$name ]]; do
  kill -0 "$serve_pid" 2>/dev/null || { cat /tmp/serve.log >&2; die "dblock-serve exited early"; }
  ((SECONDS < deadline)) || die "timed out waiting for /dev/$name"
  sleep 0.1
done
dblockctl list | grep -q "$name" || die "dblockctl list does not show $name"
mkfs.ext4 -q -F "/dev/$name"
modprobe ext4
mkdir -p /tmp/mnt
mount "/dev/$name" /tmp/mnt
head -c 8M /dev/urandom >/tmp/data
cp /tmp/data /tmp/mnt/data
umount /tmp/mnt
mount "/dev/$name" /tmp/mnt
cmp /tmp/data /tmp/mnt/data || die "the file read back differs"
umount /tmp/mnt
dblockctl destroy "$name"
rc=0
wait "$serve_pid" || rc=$?
assert_eq 0 "$rc" "dblock-serve's exit code after destroy"
[[ ! -e /dev/$name ]] || die "/dev/$name is still there after destroy"
# The data went through the server into the file.
assert_eq ext4 "$(blkid -o value -s TYPE "$img")" "file system in $img"
rm -f "$img"
rmmod dblock
log "served ext4 from file:$img, read back, destroyed"

log "apt-get remove --purge ${pkgs[*]}"
apt-get remove --purge -y "${pkgs[@]}" || die "apt-get remove --purge failed"
for p in "${pkgs[@]}"; do
  st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
  [[ -z $st || $st == un* || $st == pn* ]] || die "$p is still known to dpkg after purge: '$st'"
done
left=$(while read -r path; do if [[ -e $path || -L $path ]]; then echo "$path"; fi; done <<<"$new_paths")
[[ -z $left ]] || die "left behind after purge: $(head -5 <<<"$left")"
left=$(leftovers)
[[ -z $left ]] || die "DKMS left behind: $left"
log "purged: none of the $(wc -l <<<"$new_paths") paths the packages added is left, nor /usr/src/dblock-*, /var/lib/dkms/dblock, dblock.ko"
echo "deb-test: PASS on $kver"
