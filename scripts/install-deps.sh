#!/bin/bash
# Install every host package the project needs (build, unit tests, QEMU guest tests).
# Idempotent: does nothing (and skips `apt-get update`) when all are installed.
# Extra package names may be passed as arguments.
set -euo pipefail

PACKAGES=(
  build-essential cmake g++ pkg-config clang mmdebstrap
  libgtest-dev libgmock-dev libcli11-dev libfmt-dev nlohmann-json3-dev liburing-dev libsmartcols-dev
  qemu-system-x86 busybox-static fio e2fsprogs kmod cpio xz-utils util-linux
  iproute2 procps coreutils xfsprogs btrfs-progs fdisk udev
  gcc-multilib g++-multilib linux-source-6.12
  linux-headers-amd64 linux-headers-6.12-amd64
  shellcheck debhelper dh-dkms lintian
  libnbd-dev nbdkit qemu-utils nbd-client
  ceph-mon ceph-osd ceph-mgr ceph-common librbd-dev librados-dev rbd-nbd
  "$@"
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
  [[ $status == ii* ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

if ((EUID != 0)); then
  echo "install-deps: need root to install: ${missing[*]}" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
