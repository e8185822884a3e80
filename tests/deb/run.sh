#!/bin/bash
# The Debian packages end to end (docs/install.md, "Debian packages"):
#   1. make deb into DIR (debhelper, dh-dkms; lintian: no errors, no warnings); the changelog's
#      version, every package's and dkms.conf's PACKAGE_VERSION are one;
#   2. the packages' contents and dependencies, checked on the host;
#   3. per kernel line (DBLOCK_DEB_KERNELS, default "6.1 6.12 rt newest": make check's
#      lines), a guest with a writable root (vm/run-guest.sh --root overlay: changes
#      vanish at poweroff) installs them with apt-get install ./*.deb, DKMS builds
#      dblock.ko for the guest's kernel, the tools serve ext4 on a file-backed disk, and
#      apt-get remove --purge leaves nothing behind (tests/deb/in-guest.sh).
# newest is sid's kernel: its headers need sid's gcc, so its packages are the ones a
# sid user builds, made in the sid root (vm/sid-root.sh) into DIR-sid and checked as
# in 1 and 2; its guest installs them into that root (vm/sid-root.sh enter).
# Takes long: DKMS's build and depmod in a TCG guest on the 9p/overlay root took
# 15-18 min per kernel on a busy 2-core host (6.1: 1245 s in all).
# Usage: tests/deb/run.sh [--no-build] [--no-guest]   (--no-build: reuse DIR's packages;
# --no-guest: 1 and 2 for Debian 12's packages only, as CI runs it)
# DIR: $DBLOCK_DEB_TEST_DIR, default /var/tmp/dblock-deb-test (the guests must see it).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
dir=${DBLOCK_DEB_TEST_DIR:-/var/tmp/dblock-deb-test}
build=1 guest=1
for arg; do
  case $arg in
    --no-build) build=0 ;;
    --no-guest) guest=0 ;;
    *) echo "usage: $0 [--no-build] [--no-guest]" >&2; exit 2 ;;
  esac
done
log() { echo "[$(date +%T)] deb-test: $*" >&2; }
die() { log "FAIL: $*"; exit 1; }

start=$SECONDS
version=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$top/dkms.conf")
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "dkms.conf's PACKAGE_VERSION is '$version'"
changelog=$(dpkg-parsechangelog -l "$top/debian/changelog" -S Version)
[[ $changelog == "$version" ]] || die "debian/changelog says $changelog, dkms.conf $version"

pkgs=(dblock-dkms libdblock0 libdblock-dev dblock-tools)
# packages DIR [sid]: make deb into DIR (in the sid root with "sid") unless --no-build,
# then check_packages DIR.
packages() {
  local dir=$1 where=${2:-host} t0=$SECONDS
  if ((build)); then
    log "make deb DEB_DIR=$dir ($where)"
    mkdir -p "$dir"
    if [[ $where == sid ]]; then
      "$top/vm/sid-root.sh" run -- make -s -C "$top" deb DEB_DIR="$dir" >"$dir.log" 2>&1
    else
      make -s -C "$top" deb DEB_DIR="$dir" >"$dir.log" 2>&1
    fi || { tail -n 40 "$dir.log" >&2; die "make deb ($where) failed (log: $dir.log)"; }
    log "built in $((SECONDS - t0))s"
  fi
  check_packages "$dir"
}

# contains PKG PATH...: the package (check_packages's deb[PKG]) ships each PATH.
contains() {
  local p=$1 listing path
  shift
  listing=$(dpkg-deb -c "${deb[$p]}" | awk '{ print $6 }' | sed 's|^\./|/|; s|/$||')
  for path; do
    grep -qxF "$path" <<<"$listing" || die "$p does not ship $path"
  done
}

# check_packages DIR: the four packages of this version, lintian, their contents and
# dependencies.
check_packages() {
  local dir=$1 p errors stray ma src all
  local -A deb
  for p in "${pkgs[@]}"; do
    deb[$p]=$(ls "$dir/${p}_${version}_"*.deb) || die "no $p $version in $dir"
    [[ $(dpkg-deb -f "${deb[$p]}" Version) == "$version" ]] || die "$p's version is not $version"
  done
  all=("$dir"/*.deb)
  ((${#all[@]} == ${#pkgs[@]})) || die "$dir holds ${#all[@]} packages, not the ${#pkgs[@]} (apt install ./*.deb)"
  # No error and no warning (make deb itself fails only on errors).
  errors=$(grep '^[EW]:' "$dir/lintian.txt" || true)
  [[ -z $errors ]] || die "$dir: lintian: $errors"
  log "$dir: lintian: no errors or warnings ($(grep -c '^I:' "$dir/lintian.txt" || true) infos)"

  ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
  src=/usr/src/dblock-$version
  contains dblock-dkms "$src/dkms.conf" "$src/Makefile" "$src/Kbuild" "$src/kernel/dblock_main.c" \
    "$src/kernel/probes/run-probes.sh" "$src/include/uapi/linux/dblock.h"
  dpkg-deb -c "${deb[dblock-dkms]}" | grep -q 'dblock_probes.h' && die "dblock-dkms ships a generated dblock_probes.h"
  dpkg-deb -c "${deb[dblock-dkms]}" | grep -q -- '-rwxr-xr-x .*/run-probes.sh$' || die "run-probes.sh is not executable"
  [[ $(dpkg-deb -f "${deb[dblock-dkms]}" Architecture) == all ]] || die "dblock-dkms is not Architecture: all"
  dpkg-deb -f "${deb[dblock-dkms]}" Depends | grep -q '\bdkms\b' || die "dblock-dkms does not depend on dkms"
  dpkg-deb -I "${deb[dblock-dkms]}" postinst | grep -q 'common.postinst' || die "dblock-dkms's postinst does not run DKMS"
  contains libdblock0 "/usr/lib/$ma/libdblock.so.0" "/usr/lib/$ma/libdblock.so.$version"
  dpkg-deb -I "${deb[libdblock0]}" shlibs | grep -qx 'libdblock 0 libdblock0 (>= [0-9.]*)' ||
    die "libdblock0's shlibs: $(dpkg-deb -I "${deb[libdblock0]}" shlibs)"
  contains libdblock-dev /usr/include/dblock/server.h /usr/include/linux/dblock.h \
    "/usr/lib/$ma/libdblock.a" "/usr/lib/$ma/libdblock.so" "/usr/lib/$ma/pkgconfig/dblock.pc" \
    "/usr/lib/$ma/cmake/dblock/dblockConfig.cmake"
  dpkg-deb -f "${deb[libdblock-dev]}" Depends | grep -qF "libdblock0 (= $version)" ||
    die "libdblock-dev does not depend on libdblock0 (= $version)"
  contains dblock-tools /usr/bin/dblockctl /usr/bin/dblock-serve /usr/bin/dblock_sample_ramdisk \
    /usr/share/man/man8/dblockctl.8.gz /usr/share/man/man8/dblock-serve.8.gz \
    /usr/share/man/man8/dblock_sample_ramdisk.8.gz /usr/lib/udev/rules.d/60-dblock.rules \
    /usr/lib/systemd/system/dblock@.service /usr/share/doc/dblock-tools/examples/example.conf
  dpkg-deb -f "${deb[dblock-tools]}" Depends | grep -qF "libdblock0 (>= $version)" ||
    die "dblock-tools does not depend on libdblock0 (>= $version)"
  # Nothing outside the packages' own places (no /usr/local, no /etc/udev, no stray docs).
  stray=$(for p in "${pkgs[@]}"; do dpkg-deb -c "${deb[$p]}"; done | awk '{ print $6 }' |
    grep -E '^\./(usr/local|etc|lib/|usr/share/doc/dblock/)' || true)
  [[ -z $stray ]] || die "shipped in the wrong place: $stray"
  log "$dir: package contents checked"
}

read -ra lines <<<"${DBLOCK_DEB_KERNELS:-6.1 6.12 rt newest}"
((guest)) || lines=()
sid=0 bookworm=$((!guest))
for line in "${lines[@]}"; do
  if [[ $line == newest ]]; then sid=1; else bookworm=1; fi
done
((bookworm == 0)) || packages "$dir"
((sid == 0)) || packages "$dir-sid" sid
((guest)) || exit 0

# The guests have no network: what apt-get install ./*.deb pulls in beside the
# packages must be in the root already (the sid root has it, vm/sid-root.sh).
if ((bookworm)); then
  # shellcheck source=vm/common.sh
  . "$top/vm/common.sh"
  need_packages dkms || die "apt-get install dkms failed (the guests' apt needs it in the root)"
fi
rc=0
"$top/vm/prepare-kernels.sh" "${lines[@]}" >/dev/null
for line in "${lines[@]}"; do
  t0=$SECONDS
  run=("$top/tests/deb/in-guest.sh" "$dir" "$version")
  # In sid's root, with the guest kernel's modules (where DKMS installs) bound into it.
  [[ $line != newest ]] ||
    run=(env DBLOCK_SID_BIND=/usr/lib/modules "$top/vm/sid-root.sh" enter -- "$top/tests/deb/in-guest.sh" "$dir-sid" "$version")
  if "$top/vm/run-guest.sh" --kernel "$line" --root overlay --timeout "${DBLOCK_DEB_GUEST_TIMEOUT:-1500}" -- "${run[@]}"; then
    log "$line: PASS in $((SECONDS - t0))s"
  else
    log "$line: FAIL"
    rc=1
  fi
done
((rc == 0)) && log "all passed in $((SECONDS - start))s"
exit "$rc"
