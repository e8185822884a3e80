#!/bin/bash
# DKMS end to end, on the host (root) then in the guests:
#   make dkms-install for the 6.1 and 6.12 guest kernels (headers under
#   /usr/src), dkms status says installed for both, then each guest insmods
#   the DKMS-built module from /var/lib/dkms (signed by DKMS, the file's
#   checksum checked in the guest) and runs the seed flow (tests/guest/cases/20-seed-flow.sh);
#   finally make dkms-uninstall.
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
if ! command -v dkms >/dev/null; then
  log "installing dkms"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends dkms >/dev/null ||
    die "apt-get install dkms failed"
fi

cache=${DBLOCK_VM_CACHE:-/var/cache/dblock-vm}
"$top/vm/prepare-kernels.sh" 6.1 6.12 >/dev/null
declare -A kver
for line in 6.1 6.12; do
  kver[$line]=$(. "$cache/$line.env" && echo "$KVER")
  [[ -f /usr/src/linux-headers-${kver[$line]}/Makefile ]] ||
    die "no headers for ${kver[$line]} under /usr/src"
done
version=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$top/dkms.conf")
cmake_version=$(sed -n 's/^project(dblock VERSION \([0-9.]*\).*/\1/p' "$top/CMakeLists.txt")
[[ $version == "$cmake_version" ]] ||
  die "dkms.conf says $version, CMakeLists.txt $cmake_version: bump both"

cleanup() {
  if ((keep == 0)); then
    make -s -C "$top" dkms-uninstall >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

start=$SECONDS
make -s -C "$top" dkms-uninstall >/dev/null 2>&1 || true
log "make dkms-install KVER=\"${kver[6.1]} ${kver[6.12]}\""
make -s -C "$top" dkms-install KVER="${kver[6.1]} ${kver[6.12]}" >/tmp/dkms-install.$$.log 2>&1 ||
  { cat /tmp/dkms-install.$$.log >&2; die "make dkms-install failed"; }
rm -f /tmp/dkms-install.$$.log
log "built and installed for both kernels in $((SECONDS - start))s"
dkms status -m dblock -v "$version" >&2

rc=0
for line in 6.1 6.12; do
  k=${kver[$line]}
  dkms status -m dblock -v "$version" -k "$k" | grep -q ': installed' ||
    die "dkms status does not say installed for $k"
  ko=$(ls /var/lib/dkms/dblock/"$version"/"$k"/*/module/dblock.ko* 2>/dev/null | head -n1)
  [[ -n $ko ]] || die "no DKMS-built module for $k under /var/lib/dkms/dblock/$version"
  [[ -f /lib/modules/$k/updates/dkms/${ko##*/} ]] || die "not installed under /lib/modules/$k/updates/dkms"
  signer=$(modinfo -F signer "$ko")
  [[ $signer == "DKMS module signing key" ]] || die "$ko is not signed by DKMS (signer '$signer')"
  vermagic=$(modinfo -F vermagic "$ko")
  [[ $vermagic == "$k "* ]] || die "$ko has vermagic '$vermagic', not for $k"
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
