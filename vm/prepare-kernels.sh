#!/bin/bash
# Fetch and unpack the Debian guest kernels, build their initramfs, and install the
# matching headers. Versions are resolved from the meta packages at run time. Cached: a
# second run only re-resolves versions and checks stamps.
#   usage: vm/prepare-kernels.sh [LINE...]     (default: 6.1 and 6.12)
#   lines: 6.1, 6.12   Debian 12's two kernels
#          rt          Debian 12's PREEMPT_RT kernel (linux-image-6.12-rt-amd64)
#          newest      the newest kernel in Debian sid (linux-image-amd64 there), with its
#                      headers in the sid root file system (vm/sid-root.sh), where the
#                      module is built with sid's toolchain
#          debug       a 6.12 kernel built here with KASAN, lockdep, kmemleak etc. (all
#                      built in; vm/build-debug-kernel.sh: an hour or more the first time,
#                      then cached)
#          debug-rt    the same with PREEMPT_RT (vm/debug-rt-kernel.config)
#   env:   DBLOCK_VM_CACHE (default /var/cache/dblock-vm)
# Writes $DBLOCK_VM_CACHE/<line>.env with KVER, VMLINUZ, INITRD, MODDIR, KDIR.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${DBLOCK_VM_CACHE:-/var/cache/dblock-vm}
INITRD_MODULES=(virtio_pci 9pnet_virtio 9p)
# Loaded only for run-guest.sh --root overlay (and --init systemd).
OVERLAY_MODULES=(overlay)
export DEBIAN_FRONTEND=noninteractive

die() { echo "prepare-kernels: $*" >&2; exit 1; }
log() { echo "prepare-kernels: $*" >&2; }

apt_updated=0
apt_update_once() {
  ((apt_updated)) && return 0
  apt-get update -qq
  apt_updated=1
}

# "Package Version Depends" lines (candidate versions) for the given packages, from the
# host's apt or, for sid's packages (SID=1), the sid root's.
# apt-cache is ~0.5 s a call, so callers ask for everything at once.
SID=0
apt_show() {
  local out
  if ((SID)); then
    out=$("$HERE/sid-root.sh" run -- apt-cache show --no-all-versions "$@" 2>/dev/null || true)
  else
    out=$(apt-cache show --no-all-versions "$@" 2>/dev/null || true)
    if [[ -z $out ]]; then
      apt_update_once
      out=$(apt-cache show --no-all-versions "$@" 2>/dev/null || true)
    fi
  fi
  awk -F': ' '/^Package:/ {p=$2} /^Version:/ {v=$2} /^Depends:/ {d=$2}
    /^$/ && p {print p, v, d; p=v=d=""} END {if (p) print p, v, d}' <<<"$out"
}

# The package named PREFIX* that META depends on, from apt_show output on stdin.
meta_dep() {
  local meta=$1 prefix=$2 dep
  dep=$(awk -v m="$meta" '$1 == m' | cut -d' ' -f3- | tr ',|' '\n' |
    awk '{print $1}' | grep -m1 "^$prefix" || true)
  [[ -n $dep ]] || die "cannot resolve a $prefix* dependency of $meta (apt lists?)"
  echo "$dep"
}

pkg_installed() {
  [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null || true) == ii* ]]
}

ensure_installed() {
  local missing=() p
  for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
  ((${#missing[@]})) || return 0
  log "installing ${missing[*]}"
  apt_update_once
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Unpack image + modules, and build the initramfs, unless the stamp says it is current.
prepare_line() {
  local line=$1 meta_img meta_hdr
  SID=0
  case $line in
    debug) prepare_debug debug; return ;;
    debug-rt) prepare_debug debug-rt rt; return ;;
    6.1) meta_img=linux-image-amd64 meta_hdr=linux-headers-amd64 ;;
    6.12) meta_img=linux-image-6.12-amd64 meta_hdr=linux-headers-6.12-amd64 ;;
    rt) meta_img=linux-image-6.12-rt-amd64 meta_hdr=linux-headers-6.12-rt-amd64 ;;
    newest) meta_img=linux-image-amd64 meta_hdr=linux-headers-amd64 SID=1 ;;
    *) die "unknown kernel line '$line' (want 6.1, 6.12, rt, newest, debug or debug-rt)" ;;
  esac
  local sid_root=""
  ((SID)) && sid_root=$("$HERE/sid-root.sh" ensure)

  local metas img_pkg kver hdr_pkg
  metas=$(apt_show "$meta_img" "$meta_hdr")
  img_pkg=$(meta_dep "$meta_img" linux-image- <<<"$metas")
  kver=${img_pkg#linux-image-}
  hdr_pkg=$(meta_dep "$meta_hdr" linux-headers- <<<"$metas")
  [[ $hdr_pkg == "linux-headers-$kver" ]] ||
    die "$meta_img -> $img_pkg but $meta_hdr -> $hdr_pkg: archive out of sync?"

  # Unsigned and signed images hold the same kernel; unsigned avoids the shim dependency.
  # Newer kernels (sid's) split the image (linux-binary-unsigned-*) from its modules
  # (linux-modules-*) and its config and module lists (linux-base-*); linux-image-* is
  # an empty package that depends on them.
  local shown debs=() p v
  shown=$(apt_show "$img_pkg-unsigned" "$img_pkg" "linux-binary-unsigned-$kver" \
    "linux-modules-$kver" "linux-base-$kver")
  if read -r p v _ < <(grep "^linux-binary-unsigned-$kver " <<<"$shown"); then
    debs+=("$p=$v")
    for p in linux-modules linux-base; do
      read -r p v _ < <(grep "^$p-$kver " <<<"$shown") ||
        die "linux-binary-unsigned-$kver but no $p-$kver"
      debs+=("$p=$v")
    done
  elif read -r p v _ < <({ grep "^$img_pkg-unsigned " || grep "^$img_pkg "; } <<<"$shown"); then
    debs+=("$p=$v")
  else
    die "no candidate for $img_pkg(-unsigned) or linux-binary-unsigned-$kver"
  fi

  local dir=$CACHE/$kver root=$CACHE/$kver/root
  local moddir=$root/lib/modules/$kver initrd=$CACHE/$kver/initrd.img
  if [[ -f $dir/unpacked && $(<"$dir/unpacked") == "${debs[*]}" ]]; then
    log "$line: $kver cached"
  else
    log "$line: fetching ${debs[*]}"
    rm -rf "$dir"
    mkdir -p "$dir"
    if ((SID)); then
      (cd "$dir" && DBLOCK_SID_BIND=$dir "$HERE/sid-root.sh" run -- apt-get download -qq "${debs[@]}" 2>/dev/null)
    else
      (cd "$dir" && apt-get download -qq "${debs[@]}" 2>/dev/null)
    fi || die "apt-get download ${debs[*]} failed"
    for p in "$dir"/*.deb; do dpkg-deb -x "$p" "$root"; done
    rm -f "$dir"/*.deb
    # Newer packages ship /usr/lib/modules; keep one layout for the guest's bind mount.
    if [[ ! -d $moddir && -d $root/usr/lib/modules/$kver ]]; then
      mkdir -p "$root/lib"
      mv "$root/usr/lib/modules" "$root/lib/modules"
    fi
    # ... and the image beside the modules (vmlinuz.unsigned) rather than in /boot.
    if [[ ! -f $root/boot/vmlinuz-$kver ]]; then
      for p in "$moddir"/vmlinuz.unsigned "$moddir"/vmlinuz; do
        [[ -f $p ]] || continue
        mkdir -p "$root/boot"
        mv "$p" "$root/boot/vmlinuz-$kver"
        break
      done
    fi
    [[ -d $moddir && -f $root/boot/vmlinuz-$kver ]] || die "unexpected layout in ${debs[*]}"
    depmod -b "$root" "$kver"
    echo "${debs[*]}" >"$dir/unpacked"
  fi

  # The initramfs depends on this script and guest-init.sh: rebuild when they change.
  local initrd_sum
  initrd_sum=$(cat "$HERE/guest-init.sh" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16)
  if [[ ! -f $initrd || $(cat "$dir/initrd.sum" 2>/dev/null) != "$initrd_sum" ]]; then
    log "$line: building initramfs"
    # Written aside and renamed: a guest booting concurrently keeps a whole file.
    build_initrd "$root" "$kver" "$initrd.$$"
    mv "$initrd.$$" "$initrd"
    echo "$initrd_sum" >"$dir/initrd.sum"
  fi

  # Headers: installed on the host, or in the sid root (a path scripts/build-module.sh
  # recognises and builds in).
  local kdir=$sid_root/usr/src/linux-headers-$kver
  if ((SID)); then
    [[ -f $kdir/Makefile ]] ||
      "$HERE/sid-root.sh" run -- apt-get install -y -qq --no-install-recommends "$hdr_pkg" >/dev/null ||
      die "apt-get install $hdr_pkg in the sid root failed"
  else
    ensure_installed "$hdr_pkg"
  fi
  [[ -f $kdir/Makefile ]] || die "$hdr_pkg installed but $kdir/Makefile missing"

  cat >"$CACHE/$line.env" <<ENV
KVER=$kver
VMLINUZ=$root/boot/vmlinuz-$kver
INITRD=$initrd
MODDIR=$moddir
KDIR=$kdir
ENV
  cat "$CACHE/$line.env"
}

# The debug kernels: built from source (cached), everything the initramfs needs built in.
#   prepare_debug LINE [rt]
prepare_debug() {
  local line=$1 variant=${2:-} built kver root kdir
  built=$("$HERE/build-debug-kernel.sh" ${variant:+"$variant"}) || die "$line kernel build failed"
  kver=$(sed -n 's/^KVER=//p' <<<"$built")
  root=$(sed -n 's/^ROOT=//p' <<<"$built")
  kdir=$(sed -n 's/^KDIR=//p' <<<"$built")
  [[ -n $kver && -f $root/boot/vmlinuz-$kver && -f $kdir/Makefile ]] ||
    die "build-debug-kernel.sh gave no usable kernel: $built"
  local dir=${root%/root} initrd_sum
  local initrd=$dir/initrd.img
  initrd_sum=$(cat "$HERE/guest-init.sh" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16)
  if [[ ! -f $initrd || $(cat "$dir/initrd.sum" 2>/dev/null) != "$initrd_sum" ]]; then
    log "$line: building initramfs"
    build_initrd "$root" "$kver" "$initrd.$$" none
    mv "$initrd.$$" "$initrd"
    echo "$initrd_sum" >"$dir/initrd.sum"
  fi
  cat >"$CACHE/$line.env" <<ENV
KVER=$kver
VMLINUZ=$root/boot/vmlinuz-$kver
INITRD=$initrd
MODDIR=$root/lib/modules/$kver
KDIR=$kdir
ENV
  cat "$CACHE/$line.env"
}

# stage_modules ROOT KVER STAGE LIST MODULE...: copies MODULE... and what they need
# (uncompressed: busybox insmod cannot read the .ko.xz 6.12 ships) into STAGE/modules,
# in load order, listing them in STAGE/modules/LIST.  A module built into the kernel
# (the debug lines) is simply not listed.
stage_modules() {
  local root=$1 kver=$2 stage=$3 list=$4 ko name
  shift 4
  modprobe -d "$root" -S "$kver" --show-depends -a "$@" |
    awk '$1 == "insmod" && !seen[$2]++ {print $2}' | while read -r ko; do
    name=$(basename "$ko")
    name=${name%.xz}
    case $ko in
      *.xz) xz -dc "$ko" >"$stage/modules/$name" ;;
      *) cp "$ko" "$stage/modules/$name" ;;
    esac
    echo "$name" >>"$stage/modules/$list"
  done
}

# build_initrd ROOT KVER OUT [none]: "none" for a kernel with virtio/9p built in.
build_initrd() {
  local root=$1 kver=$2 out=$3 mods=${4:-} stage ko
  stage=$(mktemp -d)
  mkdir -p "$stage"/{bin,proc,sys,dev,modules,newroot}
  cp /bin/busybox "$stage/bin/busybox"
  local applet
  for applet in sh mount umount insmod mkdir cat dmesg tail poweroff chroot ip hostname sync uname \
    switch_root; do
    ln -s busybox "$stage/bin/$applet"
  done
  install -m 755 "$HERE/guest-init.sh" "$stage/init"
  # The kernel's own module requests (e.g. mount -t ext4 -> fs-ext4) run /sbin/modprobe
  # in the initramfs, not in the chroot where the tests run: forward them there.
  mkdir -p "$stage/sbin"
  printf '#!/bin/sh\nexec /bin/chroot /newroot /sbin/modprobe "$@"\n' >"$stage/sbin/modprobe"
  chmod 755 "$stage/sbin/modprobe"
  : >"$stage/modules/order"
  : >"$stage/modules/order.overlay"
  if [[ $mods != none ]]; then
    stage_modules "$root" "$kver" "$stage" order "${INITRD_MODULES[@]}"
    [[ -s $stage/modules/order ]] || die "no initramfs modules found for $kver"
    stage_modules "$root" "$kver" "$stage" order.overlay "${OVERLAY_MODULES[@]}"
  fi
  (cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1) >"$out"
  rm -rf "$stage"
}

(($# > 0)) || set -- 6.1 6.12
((EUID == 0)) || die "run as root (writes $CACHE and installs packages)"
"$HERE/../scripts/install-deps.sh" >/dev/null
# The guest bind-mounts the kernel's module tree here, so it must exist on the host.
mkdir -p "$CACHE" /usr/lib/modules
for line in "$@"; do prepare_line "$line"; done
