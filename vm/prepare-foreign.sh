#!/bin/bash
# Prepare a guest of a foreign architecture: its Debian kernel, headers to build
# dblock.ko against, an initramfs, and a Debian root file system for the guest.
#   usage: vm/prepare-foreign.sh ARCH [LINE]     ARCH: arm64 | armhf | i386
#                                                LINE: 6.1 (default) | 6.12 (arm64)
#   env:   DBLOCK_VM_CACHE (default /var/cache/dblock-vm)
#          DBLOCK_SECURITY_ARCHES (default "amd64 arm64": see below)
# Writes $DBLOCK_VM_CACHE/<ARCH>-<LINE>.env (ARCH KVER VMLINUZ INITRD MODDIR KDIR ROOTFS
# KMAKE); MODDIR is the module tree's path inside ROOTFS.
#
# Nothing is installed on the host and dpkg's architectures stay as they are: a private
# apt configuration ($CACHE/apt-foreign) downloads the foreign packages, which are
# unpacked with dpkg-deb. Versions are resolved from the meta packages at run time.
#   $CACHE/<KVER>/root/   image, headers, -common headers, and the amd64 linux-kbuild
#                         package the headers depend on (scripts/ and tools/ of the
#                         headers point there); KDIR is in it.
#   $CACHE/rootfs-<ARCH>/ debootstrap --foreign + second stage under qemu-user (binfmt),
#                         with bash e2fsprogs fio kmod util-linux procps; the guest
#                         kernels' module trees are hard-linked into its /usr/lib/modules.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=vm/common.sh
. "$HERE/common.sh"
CACHE=${DBLOCK_VM_CACHE:-/var/cache/dblock-vm}
ARCHES="amd64 arm64 armhf i386"
# The security suite's armhf and i386 indices failed apt's size check on these machines
# ("File has unexpected size ... Mirror sync in progress?"), which makes apt drop the
# whole suite, arm64 included. armhf and i386 kernels come from the point release.
SECURITY_ARCHES=${DBLOCK_SECURITY_ARCHES:-amd64 arm64}
ROOTFS_PACKAGES=bash,e2fsprogs,fio,kmod,util-linux,procps
INITRD_MODULES=(virtio_pci 9pnet_virtio 9p)
export DEBIAN_FRONTEND=noninteractive

die() { echo "prepare-foreign: $*" >&2; exit 1; }
log() { echo "prepare-foreign: $*" >&2; }

arch=${1:-}
line=${2:-6.1}
case $arch in
  arm64) flavour=arm64 kmake="ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-" qemu_user=qemu-aarch64 ;;
  armhf) flavour=armmp kmake="ARCH=arm CROSS_COMPILE=arm-linux-gnueabihf-" qemu_user=qemu-arm ;;
  i386) flavour=686-pae kmake="ARCH=x86 CROSS_COMPILE=i686-linux-gnu-" qemu_user="" ;;
  *) die "usage: prepare-foreign.sh arm64|armhf|i386 [6.1|6.12]" ;;
esac
case $line in
  6.1) meta_img=linux-image-$flavour meta_hdr=linux-headers-$flavour ;;
  6.12) meta_img=linux-image-6.12-$flavour meta_hdr=linux-headers-6.12-$flavour ;;
  *) die "unknown kernel line '$line' (want 6.1 or 6.12)" ;;
esac
((EUID == 0)) || die "run as root (writes $CACHE)"
need_packages qemu-system-arm qemu-system-x86 qemu-user-static binfmt-support debootstrap \
  busybox-static kmod cpio xz-utils

mkdir -p "$CACHE"
# One preparation per architecture at a time (the root file system is shared by lines).
exec 9>"$CACHE/foreign-$arch.lock"
flock 9

# --- private apt configuration ---------------------------------------------------------
APTDIR=$CACHE/apt-foreign
APT_OPTS=(-o "Dir::Etc::SourceList=$APTDIR/sources.list" -o "Dir::Etc::SourceParts=$APTDIR/none"
  -o "Dir::State::Lists=$APTDIR/lists" -o "Dir::Cache=$APTDIR/cache"
  -o "APT::Architectures=${ARCHES// /,}" -o Debug::NoLocking=1)

apt_setup() {
  mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial" "$APTDIR/none"
  local src uri suites s a
  src=$(host_sources | while read -r uri suites; do
    for s in $suites; do
      a=$ARCHES
      [[ $s == *-security ]] && a=$SECURITY_ARCHES
      echo "deb [arch=${a// /,}] $uri $s main"
    done
  done | sort -u)
  [[ -n $src ]] || die "no Debian archive found in /etc/apt/sources*"
  if [[ ! -f $APTDIR/sources.list || $(<"$APTDIR/sources.list") != "$src" ]]; then
    echo "$src" >"$APTDIR/sources.list"
    rm -f "$APTDIR/updated"
  fi
  # Refresh the indices once a day: security updates replace the kernels.
  if [[ -z $(find "$APTDIR/updated" -mmin -1440 2>/dev/null) ]]; then
    log "apt-get update (private configuration, $ARCHES)"
    apt-get "${APT_OPTS[@]}" update -qq 2>&1 | grep -E '^(E|W):' >&2 || true
    touch "$APTDIR/updated"
  fi
}

# "Package Version Depends" lines for PKG:ARCH arguments.
apt_show() {
  apt-cache "${APT_OPTS[@]}" show --no-all-versions "$@" 2>/dev/null |
    awk -F': ' '/^Package:/ {p=$2} /^Version:/ {v=$2} /^Depends:/ {d=$2}
    /^$/ && p {print p, v, d; p=v=d=""} END {if (p) print p, v, d}' || true
}

# The dependency of PKG named PREFIX*, from apt_show output on stdin.
dep_of() {
  local pkg=$1 prefix=$2 dep
  dep=$(awk -v m="$pkg" '$1 == m' | cut -d' ' -f3- | tr ',|' '\n' |
    awk '{print $1}' | grep -m1 "^$prefix" || true)
  [[ -n $dep ]] || die "cannot resolve a $prefix* dependency of $pkg"
  echo "$dep"
}

# download DIR PKG:ARCH...: candidate versions into DIR.
download() {
  local dir=$1
  shift
  (cd "$dir" && apt-get "${APT_OPTS[@]}" download -qq "$@" >/dev/null 2>&1) ||
    die "apt-get download $* failed"
}

apt_setup

# --- kernel, headers, kbuild -----------------------------------------------------------
metas=$(apt_show "$meta_img:$arch" "$meta_hdr:$arch")
img_pkg=$(dep_of "$meta_img" linux-image- <<<"$metas")
hdr_pkg=$(dep_of "$meta_hdr" linux-headers- <<<"$metas")
kver=${img_pkg#linux-image-}
[[ $hdr_pkg == "linux-headers-$kver" ]] || die "$img_pkg vs $hdr_pkg: archive out of sync?"
shown=$(apt_show "$img_pkg-unsigned:$arch" "$img_pkg:$arch" "$hdr_pkg:$arch")
# The -unsigned image if there is one (arm64, i386), else the plain one (armhf).
read -r deb_pkg deb_ver _ < <(awk -v u="$img_pkg-unsigned" -v p="$img_pkg" \
  '$1 == u {uu=$0} $1 == p {pp=$0} END {print (uu ? uu : pp)}' <<<"$shown") || true
[[ -n ${deb_ver:-} ]] || die "no candidate for $img_pkg(-unsigned):$arch"
common_pkg=$(dep_of "$hdr_pkg" linux-headers- <<<"$shown")
kbuild_pkg=$(dep_of "$hdr_pkg" linux-kbuild- <<<"$shown")

dir=$CACHE/$kver root=$CACHE/$kver/root
stamp="$deb_pkg $deb_ver $common_pkg $kbuild_pkg"
kdir=$root/usr/src/linux-headers-$kver
if [[ -f $dir/unpacked && $(<"$dir/unpacked") == "$stamp" ]]; then
  log "$arch $line: $kver cached"
else
  log "$arch $line: fetching $deb_pkg $deb_ver, $hdr_pkg, $common_pkg, $kbuild_pkg:amd64"
  rm -rf "$dir"
  mkdir -p "$dir/debs"
  download "$dir/debs" "$deb_pkg:$arch=$deb_ver" "$hdr_pkg:$arch" "$common_pkg" "$kbuild_pkg:amd64"
  for deb in "$dir"/debs/*.deb; do dpkg-deb -x "$deb" "$root"; done
  rm -rf "$dir/debs"
  if [[ ! -d $root/lib/modules/$kver && -d $root/usr/lib/modules/$kver ]]; then
    mkdir -p "$root/lib"
    mv "$root/usr/lib/modules" "$root/lib/modules"
  fi
  [[ -f $root/boot/vmlinuz-$kver && -d $root/lib/modules/$kver && -f $kdir/Makefile ]] ||
    die "unexpected layout after unpacking $kver"
  # The headers point at /usr/src/... and /usr/lib/linux-kbuild-* by absolute paths:
  # make them point into this root (the host's kbuild may be another version or absent).
  find "$root/usr/src" -maxdepth 2 -type l | while read -r l; do
    t=$(readlink "$l")
    if [[ $t == /usr/* ]]; then ln -sfn "$root$t" "$l"; fi
  done
  sed -i -E "s#^include /usr/src/#include $root/usr/src/#" "$kdir/Makefile"
  depmod -b "$root" "$kver"
  echo "$stamp" >"$dir/unpacked"
fi
# The kernel's own build scripts (6.12) may look for the kbuild tree at its usual path.
kbuild_dir=$(find "$root/usr/lib" -maxdepth 1 -name 'linux-kbuild-*' | head -1)
[[ -n $kbuild_dir ]] || die "no linux-kbuild tree in $root/usr/lib"

# --- busybox for the initramfs ---------------------------------------------------------
bb=$CACHE/busybox-$arch
if [[ ! -x $bb ]]; then
  tmp=$(mktemp -d)
  download "$tmp" "busybox-static:$arch"
  dpkg-deb -x "$tmp"/*.deb "$tmp/x"
  install -m 755 "$tmp/x/bin/busybox" "$bb.$$"
  mv "$bb.$$" "$bb"
  rm -rf "$tmp"
fi

# --- root file system -------------------------------------------------------------------
rootfs=$CACHE/rootfs-$arch
mirror=$(host_mirror)
if [[ ! -f $rootfs/.dblock-rootfs-done || $(<"$rootfs/.dblock-rootfs-done") != "$ROOTFS_PACKAGES" ]]; then
  log "$arch: building root file system (debootstrap, $ROOTFS_PACKAGES)"
  if [[ -n $qemu_user ]]; then
    # The second stage runs the foreign binaries through qemu-user.
    [[ -e /proc/sys/fs/binfmt_misc/register ]] ||
      mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    [[ -e /proc/sys/fs/binfmt_misc/$qemu_user ]] || update-binfmts --enable "$qemu_user"
    grep -q enabled "/proc/sys/fs/binfmt_misc/$qemu_user" || die "binfmt $qemu_user not enabled"
  fi
  rm -rf "$rootfs" "$rootfs.tmp"
  t0=$SECONDS
  debootstrap --foreign --arch="$arch" --variant=minbase --include="$ROOTFS_PACKAGES" \
    bookworm "$rootfs.tmp" "$mirror" >"$CACHE/debootstrap-$arch.log" 2>&1 ||
    die "debootstrap first stage failed: $CACHE/debootstrap-$arch.log"
  chroot "$rootfs.tmp" /debootstrap/debootstrap --second-stage >>"$CACHE/debootstrap-$arch.log" 2>&1 ||
    die "debootstrap second stage failed: $CACHE/debootstrap-$arch.log"
  rm -rf "$rootfs.tmp"/var/cache/apt/archives/*.deb
  mkdir -p "$rootfs.tmp/usr/lib/modules"
  echo "$ROOTFS_PACKAGES" >"$rootfs.tmp/.dblock-rootfs-done"
  mv "$rootfs.tmp" "$rootfs"
  log "$arch: root file system ready in $((SECONDS - t0)) s"
fi
# The kernel's module tree, hard-linked (same file system, no copy) into the root.
moddir=/usr/lib/modules/$kver
if [[ ! -f $rootfs$moddir/modules.dep || $rootfs$moddir/modules.dep -ot $dir/unpacked ]]; then
  rm -rf "${rootfs:?}$moddir"
  cp -al "$root/lib/modules/$kver" "$rootfs$moddir" 2>/dev/null ||
    cp -a "$root/lib/modules/$kver" "$rootfs$moddir"
fi

# --- initramfs ---------------------------------------------------------------------------
initrd=$dir/initrd.img
initrd_sum=$(cat "$HERE/guest-init.sh" "${BASH_SOURCE[0]}" "$bb" | sha256sum | cut -c1-16)
if [[ ! -f $initrd || $(cat "$dir/initrd.sum" 2>/dev/null) != "$initrd_sum" ]]; then
  log "$arch $line: building initramfs"
  stage=$(mktemp -d)
  mkdir -p "$stage"/{bin,sbin,proc,sys,dev,modules,newroot}
  cp "$bb" "$stage/bin/busybox"
  for applet in sh mount umount insmod mkdir cat dmesg tail poweroff chroot ip hostname sync uname; do
    ln -s busybox "$stage/bin/$applet"
  done
  install -m 755 "$HERE/guest-init.sh" "$stage/init"
  printf '#!/bin/sh\nexec /bin/chroot /newroot /sbin/modprobe "$@"\n' >"$stage/sbin/modprobe"
  chmod 755 "$stage/sbin/modprobe"
  # Built-in modules show up as "builtin NAME": only "insmod PATH" lines are loaded.
  modprobe -d "$root" -S "$kver" --show-depends -a "${INITRD_MODULES[@]}" |
    awk '$1 == "insmod" && !seen[$2]++ {print $2}' | while read -r ko; do
    name=$(basename "$ko")
    name=${name%.xz}
    case $ko in
      *.xz) xz -dc "$ko" >"$stage/modules/$name" ;;
      *) cp "$ko" "$stage/modules/$name" ;;
    esac
    echo "$name" >>"$stage/modules/order"
  done
  touch "$stage/modules/order"
  (cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1) >"$initrd.$$"
  mv "$initrd.$$" "$initrd"
  echo "$initrd_sum" >"$dir/initrd.sum"
  rm -rf "$stage"
fi

env_file=$CACHE/$arch-$line.env
cat >"$env_file.$$" <<ENV
ARCH=$arch
KVER=$kver
VMLINUZ=$root/boot/vmlinuz-$kver
INITRD=$initrd
MODDIR=$moddir
KDIR=$kdir
ROOTFS=$rootfs
KMAKE="$kmake"
ENV
mv "$env_file.$$" "$env_file"
cat "$env_file"
