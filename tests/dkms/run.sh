#!/bin/bash
# DKMS end to end, as a user of each kernel's distribution would, then in the guests:
#   make dkms-install for each kernel line (DBLOCK_DKMS_KERNELS, default "6.1 6.12
#   newest"): Debian 12's on the host (headers under /usr/src), sid's newest in the
#   sid root file system (vm/sid-root.sh: its dkms, gcc and headers). dkms status says
#   installed, then each guest insmods the DKMS-built module from /var/lib/dkms (signed
#   by DKMS, the file's checksum checked in the guest) and runs the seed flow
#   (tests/guest/cases/20-seed-flow.sh); finally make dkms-uninstall.
# Usage: tests/dkms/run.sh [--keep]   (--keep: leave the DKMS install in place)
# The guests run the seed flow with the tools in $DBLOCK_BIN (default build/bin).
# Installs dkms (apt) when missing.  Changes the host: /usr/src/dblock-VER,
# /var/lib/dkms/dblock, /lib/modules/KVER/updates/dkms (until uninstalled).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
keep=0
[[ ${1:-} == --keep ]] && keep=1
log() { echo "[$(date +%T)] dkms-test: $*" >&2; }
die() { log "FAIL: $*"; exit 1; }

((EUID == 0)) || die "run as root (dkms installs into /usr/src, /var/lib/dkms, /lib/modules)"
# shellcheck source=vm/common.sh
. "$top/vm/common.sh"
need_packages dkms || die "apt-get install dkms failed"

cache=${DBLOCK_VM_CACHE:-/var/cache/dblock-vm}
read -ra lines <<<"${DBLOCK_DKMS_KERNELS:-6.1 6.12 newest}"
"$top/vm/prepare-kernels.sh" "${lines[@]}" >/dev/null
# Per line: its KVER, and where its distribution lives: "" (the host) or the sid root.
declare -A kver sysroot
for line in "${lines[@]}"; do
  # shellcheck source=/dev/null
  kver[$line]=$(. "$cache/$line.env" && echo "$KVER")
  sysroot[$line]=""
  [[ $line == newest ]] && sysroot[$line]=$cache/sid-root
  [[ -f ${sysroot[$line]}/usr/src/linux-headers-${kver[$line]}/Makefile ]] ||
    die "no headers for ${kver[$line]} under ${sysroot[$line]}/usr/src"
done
version=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$top/dkms.conf")
# The one release number (CMake, Kbuild's MODULE_VERSION and the tools read it).
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "dkms.conf's PACKAGE_VERSION is '$version'"

# in_sys LINE CMD...: CMD where LINE's distribution lives.
in_sys() {
  local line=$1
  shift
  if [[ -n ${sysroot[$line]} ]]; then
    "$top/vm/sid-root.sh" run -- "$@"
  else
    "$@"
  fi
}

cleanup() {
  if ((keep == 0)); then
    for line in "${lines[@]}"; do
      in_sys "$line" make -s -C "$top" dkms-uninstall >/dev/null 2>&1 || true
    done
  fi
}
trap cleanup EXIT

start=$SECONDS
rc=0
for line in "${lines[@]}"; do
  k=${kver[$line]} r=${sysroot[$line]}
  in_sys "$line" make -s -C "$top" dkms-uninstall >/dev/null 2>&1 || true
  log "$line: make dkms-install KVER=$k${r:+ (in $r)}"
  t0=$SECONDS
  in_sys "$line" make -s -C "$top" dkms-install KVER="$k" >/var/tmp/dkms-install.$$.log 2>&1 ||
    { cat /var/tmp/dkms-install.$$.log >&2; die "$line: make dkms-install failed"; }
  rm -f /var/tmp/dkms-install.$$.log
  log "$line: built and installed in $((SECONDS - t0))s"
  in_sys "$line" dkms status -m dblock -v "$version" -k "$k" | grep -q ': installed' ||
    die "dkms status does not say installed for $k"
  ko=$(ls "$r"/var/lib/dkms/dblock/"$version"/"$k"/*/module/dblock.ko* 2>/dev/null | head -n1)
  [[ -n $ko ]] || die "no DKMS-built module for $k under $r/var/lib/dkms/dblock/$version"
  ls "$r/lib/modules/$k/updates/dkms/${ko##*/}" "$r/usr/lib/modules/$k/updates/dkms/${ko##*/}" \
    >/dev/null 2>&1 || die "not installed under $r/lib/modules/$k/updates/dkms"
  signer=$(modinfo -F signer "$ko")
  [[ $signer == "DKMS module signing key" ]] || die "$ko is not signed by DKMS (signer '$signer')"
  vermagic=$(modinfo -F vermagic "$ko")
  [[ $vermagic == "$k "* ]] || die "$ko has vermagic '$vermagic', not for $k"
  modversion=$(modinfo -F version "$ko")
  [[ $modversion == "$version" ]] || die "$ko has version '$modversion', dkms.conf $version"
  log "$line: guest loads $ko and runs the seed flow"
  if "$top/vm/run-guest.sh" --kernel "$line" -- env DBLOCK_BIN="${DBLOCK_BIN:-$top/build/bin}" \
    "$top/tests/dkms/in-guest.sh" "$ko" "$(sha256sum <"$ko" | cut -d' ' -f1)"; then
    log "$line: PASS"
  else
    log "$line: FAIL"
    rc=1
  fi
done
((keep)) && log "--keep: left installed (make dkms-uninstall removes it)"
((rc == 0)) && log "all passed in $((SECONDS - start))s"
exit "$rc"
