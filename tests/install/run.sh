#!/bin/bash
# The installed package, end to end:
#   1. make install DESTDIR=$DIR/root (PREFIX=/usr/local) from a fresh build
#      directory; check the tree (static and shared library with its SONAME,
#      headers incl. <linux/dblock.h>, dblock.pc, CMake package, static
#      tools, man pages, udev rule, systemd unit);
#   2. build tests/install/consumer.cc out of tree: with find_package(dblock)
#      (CMAKE_PREFIX_PATH), with pkg-config (PKG_CONFIG_SYSROOT_DIR), and with
#      pkg-config --static, linked statically;
#   3. run them in the 6.1 and 6.12 guests (tests/guest/cases/60-installed-library.sh).
# Usage: tests/install/run.sh [--no-guest]
# DIR: $DBLOCK_INSTALL_TEST_DIR, default /var/tmp/dblock-install-test (not
# /tmp: the guests must see it).  Needs dblock.ko built for the guests
# (scripts/build-module.sh, see tests/guest/dblock-lib.sh).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
dir=${DBLOCK_INSTALL_TEST_DIR:-/var/tmp/dblock-install-test}
guest=1
[[ ${1:-} == --no-guest ]] && guest=0
log() { echo "[$(date +%T)] install-test: $*" >&2; }
die() { log "FAIL: $*"; exit 1; }
check() { [[ -e $root/$1 ]] || die "not installed: $1"; }

root=$dir/root prefix=/usr/local
start=$SECONDS
# A fresh build: a cache left by another checkout would make cmake refuse.
rm -rf "${dir:?}/root" "${dir:?}/root-usr" "${dir:?}/bin" "${dir:?}/consumer-cmake" "${dir:?}/build"
mkdir -p "$dir/bin"

log "make install DESTDIR=$root PREFIX=$prefix"
make -s -C "$top" install BUILD_DIR="$dir/build" DESTDIR="$root" PREFIX="$prefix" \
  CMAKE_ARGS=-DDBLOCK_BUILD_TESTS=OFF \
  >"$dir/install.log" 2>&1 || { tail -n 40 "$dir/install.log"; die "make install failed"; }
log "installed in $((SECONDS - start))s"

lib=$prefix/lib
for f in "$lib/libdblock.a" "$lib/libdblock.so" "$lib/libdblock.so.0" \
  "$lib/pkgconfig/dblock.pc" "$lib/cmake/dblock/dblockConfig.cmake" \
  "$lib/cmake/dblock/dblockConfigVersion.cmake" "$lib/cmake/dblock/dblockTargets.cmake" \
  "$prefix/include/dblock/server.h" "$prefix/include/dblock/serve.h" \
  "$prefix/include/dblock/null_backend.h" "$prefix/include/linux/dblock.h" \
  "$prefix/bin/dblockctl" "$prefix/bin/dblock-serve" "$prefix/bin/dblock_sample_ramdisk" \
  "$prefix/share/man/man8/dblockctl.8" "$prefix/share/man/man8/dblock-serve.8" \
  "$prefix/share/man/man8/dblock_sample_ramdisk.8" \
  /etc/udev/rules.d/60-dblock.rules "$prefix/lib/systemd/system/dblock@.service" \
  "$prefix/share/doc/dblock/example.conf"; do
  check "$f"
done
soname=$(readelf -d "$root$lib/libdblock.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ $soname == libdblock.so.0 ]] || die "SONAME is '$soname', not libdblock.so.0"
[[ -L $root$lib/libdblock.so && -L $root$lib/libdblock.so.0 ]] || die "libdblock.so links missing"
# The tools link the shared library, as a distribution ships them; it
# exports dblock:: only (libdblock.map), not the fmt it is built with.
for tool in dblockctl dblock-serve dblock_sample_ramdisk; do
  needed=$(readelf -d "$root$prefix/bin/$tool" | sed -n 's/.*(NEEDED).*\[\(libdblock[^]]*\)\]/\1/p')
  [[ $needed == libdblock.so.0 ]] || die "$tool needs '$needed', not libdblock.so.0"
done
exports=$(nm -DC --defined-only "$root$lib/libdblock.so.0" | awk '{ $1 = $2 = ""; sub(/^ +/, ""); print }')
leaked=$(awk '!/^(dblock::|typeinfo for dblock::|typeinfo name for dblock::|vtable for dblock::|DBLOCK_0$)/' <<<"$exports" | head -5)
[[ -z $leaked ]] || die "libdblock.so.0 exports more than dblock::: $leaked"
private=$(awk '/dblock::(internal|detail)::|dblock::(Mapping|QueueBuffer)/' <<<"$exports" | head -3)
[[ -z $private ]] || die "libdblock.so.0 exports private classes: $private"
# The installed headers are the API: what a backend author needs, each one
# compiling on its own, none of the library's private ones.
for h in queue_buffer.h mapping.h dispatch.h async_server.h; do
  [[ ! -e $root$prefix/include/dblock/$h ]] || die "private header installed: dblock/$h"
done
for h in "$root$prefix"/include/dblock/*.h; do
  echo "#include <dblock/$(basename "$h")>" |
    g++ -std=c++20 -fsyntax-only -Wall -Wextra -Werror -I"$root$prefix/include" -x c++ - ||
    die "installed header dblock/$(basename "$h") does not compile on its own"
done
grep -q "^ExecStart=$prefix/bin/dblock-serve --config /etc/dblock/%i.conf --create-or-attach$" \
  "$root$prefix/lib/systemd/system/dblock@.service" || die "unit's ExecStart is wrong"
for page in dblockctl dblock-serve dblock_sample_ramdisk; do
  warnings=$(MANWIDTH=80 man --warnings -l "$root$prefix/share/man/man8/$page.8" 2>&1 >/dev/null)
  [[ -z $warnings ]] || die "man $page: $warnings"
done
if command -v systemd-analyze >/dev/null; then
  # The unit names a binary and a man page that are not installed on this host.
  complaints=$(systemd-analyze verify "$root$prefix/lib/systemd/system/dblock@.service" 2>&1 |
    grep -v -e 'not executable' -e 'No such file' -e "Command 'man " -e '^$' || true)
  [[ -z $complaints ]] || die "systemd-analyze verify: $complaints"
fi
# One release number (dkms.conf's): every tool says it, from the library it runs with.
release=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$top/dkms.conf")
for tool in dblockctl dblock-serve dblock_sample_ramdisk; do
  said=$(LD_LIBRARY_PATH=$root$lib "$root$prefix/bin/$tool" --version) || die "$tool --version failed"
  [[ $said == "$tool (dblock) $release" ]] || die "$tool --version says '$said', not '$tool (dblock) $release'"
done
# The same build directory, reconfigured for PREFIX=/usr: the unit and the
# rule follow the prefix (cached paths from the first configure once kept
# them under /usr/local and /etc).
make -s -C "$top" install BUILD_DIR="$dir/build" DESTDIR="$dir/root-usr" PREFIX=/usr \
  CMAKE_ARGS=-DDBLOCK_BUILD_TESTS=OFF >"$dir/install-usr.log" 2>&1 ||
  { tail -n 40 "$dir/install-usr.log"; die "make install PREFIX=/usr failed"; }
for f in /usr/lib/systemd/system/dblock@.service /usr/lib/udev/rules.d/60-dblock.rules /usr/bin/dblockctl; do
  [[ -e $dir/root-usr$f ]] || die "PREFIX=/usr after /usr/local: no $f"
done
for d in /usr/local /etc/udev; do
  [[ ! -e $dir/root-usr$d ]] || die "PREFIX=/usr after /usr/local: $d was written: $(find "$dir/root-usr$d" | head -3)"
done
grep -q "^ExecStart=/usr/bin/dblock-serve " "$dir/root-usr/usr/lib/systemd/system/dblock@.service" ||
  die "PREFIX=/usr: the unit's ExecStart is not /usr/bin/dblock-serve"
log "installed tree checked (SONAME $soname, tools on libdblock.so.0, only dblock:: exported)"

# A user's project with CMake.
log "consumer: find_package(dblock) with CMAKE_PREFIX_PATH=$root$prefix"
cmake -S "$top/tests/install" -B "$dir/consumer-cmake" -DCMAKE_PREFIX_PATH="$root$prefix" \
  -DCMAKE_BUILD_TYPE=Release >"$dir/consumer-cmake.log" 2>&1 &&
  cmake --build "$dir/consumer-cmake" >>"$dir/consumer-cmake.log" 2>&1 ||
  { cat "$dir/consumer-cmake.log"; die "CMake consumer build failed"; }
cp "$dir/consumer-cmake/dblock_install_consumer" "$dir/bin/consumer-cmake"

# A user's Makefile with pkg-config (the .pc names /usr/local; the sysroot
# variable points it into the DESTDIR tree).
export PKG_CONFIG_PATH=$root$lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$root
[[ $(pkg-config --modversion dblock) == "$release" ]] ||
  die "pkg-config --modversion dblock: $(pkg-config --modversion dblock), the release is $release"
log "consumer: pkg-config: $(pkg-config --cflags --libs dblock)"
# shellcheck disable=SC2046
g++ -std=c++20 -O2 -o "$dir/bin/consumer-pkgconfig" "$top/tests/install/consumer.cc" \
  $(pkg-config --cflags --libs dblock) -Wl,-rpath,"$root$lib" || die "pkg-config consumer build failed"
log "consumer: pkg-config --static, linked statically"
# shellcheck disable=SC2046
g++ -std=c++20 -O2 -static -o "$dir/bin/consumer-static" "$top/tests/install/consumer.cc" \
  $(pkg-config --static --cflags --libs dblock) || die "static consumer build failed"

for exe in consumer-cmake consumer-pkgconfig; do
  needed=$(readelf -d "$dir/bin/$exe" | sed -n 's/.*(NEEDED).*\[\(libdblock[^]]*\)\]/\1/p')
  [[ $needed == libdblock.so.0 ]] || die "$exe needs '$needed', not libdblock.so.0"
  resolved=$(ldd "$dir/bin/$exe" | awk '$1 == "libdblock.so.0" {print $3}')
  [[ $resolved == "$root$lib/libdblock.so.0" ]] || die "$exe finds libdblock.so.0 at '$resolved'"
done
file "$dir/bin/consumer-static" | grep -q 'statically linked' || die "consumer-static is not static"
log "built 3 consumers in $((SECONDS - start))s"

((guest)) || exit 0
rc=0
for line in 6.1 6.12; do
  if "$top/vm/run-guest.sh" --kernel "$line" -- env DBLOCK_INSTALL_TEST_DIR="$dir" \
    DBLOCK_BIN="${DBLOCK_BIN:-$top/build/bin}" ${DBLOCK_KMOD_DIR:+DBLOCK_KMOD_DIR="$DBLOCK_KMOD_DIR"} \
    "$top/tests/guest/run-suite.sh" "$top/tests/guest/cases/60-installed-library.sh"; then
    log "$line: PASS"
  else
    log "$line: FAIL"
    rc=1
  fi
done
((rc == 0)) && log "all passed in $((SECONDS - start))s"
exit "$rc"
