#!/bin/bash
# Builds kublk, the kernel's own ublk selftest server (tools/testing/selftests/ublk/:
# null, loop, stripe targets), from Debian sid's linux-source-MAJOR.MINOR package with
# sid's gcc and liburing, in the sid root (vm/sid-root.sh), as one static binary: the
# bench's guests run the host's Debian 12 root, whose glibc is older than sid's.
# A ublk reference server no one here wrote, for bench/guest-bench.sh's kublk-* rows.
#   usage: bench/build-kublk.sh KVER   (e.g. 7.2.13+deb14-amd64: linux-source-7.2)
#   prints the binary's path; builds it once per linux-source version, under
#   $DBLOCK_KUBLK_DIR (default /var/tmp/dblock-kublk/VERSION/): only the selftest's
#   sources, its uapi header and the binary; no kernel source enters the checkout.
# linux-source-* is installed into the sid root on demand (about 160 MB, not in
# vm/sid-root.sh's PACKAGES: only this bench wants it); liburing-dev is there already.
set -euo pipefail
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() { echo "build-kublk: $*" >&2; exit 1; }
log() { echo "build-kublk: $*" >&2; }

kver=${1:?usage: build-kublk.sh KVER}
[[ $kver =~ ^([0-9]+\.[0-9]+)[.-] ]] || die "cannot tell the kernel line of '$kver'"
pkg=linux-source-${BASH_REMATCH[1]}
root=$("$TOP/vm/sid-root.sh" ensure)
sid() { "$TOP/vm/sid-root.sh" run -- "$@"; }

# shellcheck disable=SC2016 # dpkg-query's format, not the shell's
have() { [[ $(sid dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null) == ii* ]]; }
if ! have "$pkg" || ! have liburing-dev; then
  log "installing $pkg and liburing-dev into the sid root"
  sid apt-get install -y -qq --no-install-recommends "$pkg" liburing-dev >/var/tmp/dblock-kublk-apt.log 2>&1 ||
    die "apt-get install $pkg liburing-dev in the sid root failed: see /var/tmp/dblock-kublk-apt.log"
fi
# shellcheck disable=SC2016 # dpkg-query's format
ver=$(sid dpkg-query -W -f='${Version}' "$pkg")
tarball=$root/usr/src/$pkg.tar.xz
[[ -f $tarball ]] || die "$pkg $ver has no $tarball"

dir=${DBLOCK_KUBLK_DIR:-/var/tmp/dblock-kublk/$ver}
if [[ ! -x $dir/kublk ]]; then
  log "building kublk from $pkg $ver (static, sid's gcc and liburing) in $dir"
  rm -rf "$dir.tmp"
  mkdir -p "$dir.tmp/inc/linux"
  # The selftest and the uapi header it builds against (the tarball's own, not
  # linux-libc-dev's: the server and the kernel interface of one release).
  tar -xJf "$tarball" -C "$dir.tmp" --strip-components=1 \
    "$pkg/tools/testing/selftests/ublk" "$pkg/include/uapi/linux/ublk_cmd.h" ||
    die "extracting the ublk selftest from $tarball failed"
  cp "$dir.tmp/include/uapi/linux/ublk_cmd.h" "$dir.tmp/inc/linux/"
  src=$dir.tmp/tools/testing/selftests/ublk
  # The selftest's Makefile (via lib.mk): -O3 -Wall, -D_GNU_SOURCE, -luring -lpthread -lm;
  # every .c but metadata_size.c, a separate tool.
  # shellcheck disable=SC2016 # expanded by the inner shell
  (cd "$src" && sid bash -euc 'gcc -O3 -Wall -D_GNU_SOURCE -I "$1" -static -o "$2" $(ls ./*.c | grep -v metadata_size) \
      -luring -lpthread -lm' - "$dir.tmp/inc" "$dir.tmp/kublk") >"$dir.tmp/build.log" 2>&1 ||
    { tail -20 "$dir.tmp/build.log" >&2; die "building kublk failed: see $dir.tmp/build.log"; }
  echo "$pkg $ver" >"$dir.tmp/VERSION"
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
fi
# Static: it must run on the host (Debian 12) as it will in the guest.
# (--help's exit status is not 0; its text is the check.)
usage=$("$dir/kublk" --help 2>&1) || :
[[ $usage == *"kublk add -t"* ]] || die "$dir/kublk does not run on this host: $(head -c 200 <<<"$usage")"
echo "$dir/kublk"
