#!/bin/bash
# Cross-builds dblock for a foreign architecture:
#   - dblock.ko with W=1 against the Debian kernel headers of that architecture
#     (vm/prepare-foreign.sh fetches them), into /var/tmp/dblock-kmod/<KVER>/; any
#     compiler warning fails the build;
#   - the userspace (libdblock, dblockctl, dblock_sample_ramdisk and the kernel ABI
#     test), statically linked, into build-<ARCH>/bin/ of the checkout. GoogleTest is
#     built for the target from /usr/src/googletest (build-<ARCH>/gtest/).
# Usage: scripts/cross-build.sh ARCH [LINE...]   ARCH: arm64 | armhf | i386
#                                                LINE: 6.1 (default) | 6.12
# Env: DBLOCK_XBUILD_UNIT=1 also builds the unit tests (run with ctest under qemu-user);
#      DBLOCK_XBUILD_MODULE=0 builds the userspace only.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cache=${DBLOCK_VM_CACHE:-/var/cache/dblock-vm}

arch=${1:-}
shift || true
(($#)) || set -- 6.1
case $arch in
arm64) triple=aarch64-linux-gnu proc=aarch64 emu=qemu-aarch64-static ;;
armhf) triple=arm-linux-gnueabihf proc=arm emu=qemu-arm-static ;;
i386) triple=i686-linux-gnu proc=i686 emu="" ;;
*)
	echo "usage: cross-build.sh arm64|armhf|i386 [6.1|6.12 ...]" >&2
	exit 2
	;;
esac
# Installs the given packages if missing (not scripts/install-deps.sh: that would also
# install everything else the project needs).
need_packages() {
	local missing=() p
	for p in "$@"; do
		[[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null) == ii* ]] || missing+=("$p")
	done
	((${#missing[@]} == 0)) && return 0
	# Ask apt (a simulation) rather than guess which packages conflict.
	if [[ $(dpkg-query -W -f='${db:Status-Abbrev}' gcc-multilib 2>/dev/null) == ii* ]] &&
		apt-get install -s --no-install-recommends "${missing[@]}" 2>/dev/null |
		grep -qE '^Remv (gcc|g\+\+)(-[0-9]+)?-multilib'; then
		echo "cross-build: ${missing[*]} would remove gcc-multilib (Debian 12: they conflict); not installing" >&2
		exit 1
	fi
	echo "installing ${missing[*]}" >&2
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
# Debian 12's gcc-multilib conflicts with every gcc-*-linux-gnu cross compiler
# (installing one removes the other). i386 falls back to the host's gcc -m32 when
# multilib is there and the i686 cross compiler is not; never install over multilib.
m32=""
if [[ $arch == i386 ]] && ! command -v i686-linux-gnu-g++ >/dev/null &&
	[[ $(dpkg-query -W -f='${db:Status-Abbrev}' g++-multilib 2>/dev/null) == ii* ]]; then
	m32=" -m32"
	need_packages qemu-user-static cmake googletest libfmt-dev libcli11-dev nlohmann-json3-dev
elif ! command -v "$triple-g++" >/dev/null &&
	[[ $(dpkg-query -W -f='${db:Status-Abbrev}' gcc-multilib 2>/dev/null) == ii* ]]; then
	# A private copy of the two conflicting packages (the compiler drivers, cc1plus),
	# unpacked under the cache; everything else is installed normally (no conflict).
	dbarch=$arch
	[[ $arch == i386 ]] || need_packages "binutils-$triple" "cpp-12-$triple" "libc6-dev-$dbarch-cross" \
		"libstdc++-12-dev-$dbarch-cross" "libgcc-12-dev-$dbarch-cross" qemu-user-static cmake \
		googletest libfmt-dev libcli11-dev nlohmann-json3-dev
	tcdir=$cache/toolchain-$triple
	pfx=$tcdir/x/usr
	if [[ ! -x $pfx/bin/$triple-g++ ]]; then
		echo "cross-build: private $triple gcc 12 in $tcdir (gcc-multilib is installed)" >&2
		rm -rf "$tcdir"
		mkdir -p "$tcdir/debs"
		(cd "$tcdir/debs" && apt-get download -qq "gcc-12-$triple" "g++-12-$triple" >/dev/null 2>&1) || {
			echo "cross-build: apt-get download gcc-12-$triple g++-12-$triple failed" >&2
			exit 1
		}
		for deb in "$tcdir"/debs/*.deb; do dpkg-deb -x "$deb" "$tcdir/x"; done
		rm -rf "$tcdir/debs"
		# The driver looks for cc1, crt files, libgcc and the target's headers and
		# libraries relative to itself: link the installed ones in.
		cp -rsn "/usr/lib/gcc-cross/$triple/12/." "$pfx/lib/gcc-cross/$triple/12/"
		ln -sfn "/usr/$triple" "$pfx/$triple"
		[[ -e $pfx/bin/$triple-cpp-12 ]] || ln -s "/usr/bin/$triple-cpp-12" "$pfx/bin/$triple-cpp-12"
		for t in gcc g++ cpp; do ln -sfn "$triple-$t-12" "$pfx/bin/$triple-$t"; done
	fi
	export PATH=$pfx/bin:$PATH
else
	need_packages "g++-$triple" "gcc-$triple" qemu-user-static cmake googletest libfmt-dev libcli11-dev nlohmann-json3-dev
fi
cc=$triple-gcc cxx=$triple-g++
[[ -z $m32 ]] || cc=gcc cxx=g++

# --- kernel module, one per kernel line ----------------------------------------------
[[ ${DBLOCK_XBUILD_MODULE:-1} == 1 ]] || set --
for line in "$@"; do
	"$top/vm/prepare-foreign.sh" "$arch" "$line" >/dev/null
	# shellcheck source=/dev/null
	. "$cache/$arch-$line.env"
	# Host gcc for i386: kbuild adds -m32 itself.
	[[ -z $m32 ]] || KMAKE="ARCH=x86"
	out=/var/tmp/dblock-kmod/$KVER
	log=$(mktemp)
	# shellcheck disable=SC2086 # KMAKE is "ARCH=... CROSS_COMPILE=..."
	if ! "$top/scripts/build-module.sh" "$KDIR" "$out" $KMAKE W=1 >"$log" 2>&1; then
		cat "$log"
		echo "cross-build: dblock.ko for $KVER FAILED" >&2
		exit 1
	fi
	if grep -E 'warning:|error:' "$log"; then
		echo "cross-build: dblock.ko for $KVER built with warnings" >&2
		exit 1
	fi
	rm -f "$log"
	echo "cross-build: $out/dblock.ko ($KVER, W=1, no warnings)"
done

# --- userspace -------------------------------------------------------------------------
bdir=$top/build-$arch
mkdir -p "$bdir/hostinc"
# The header-only libraries are the host's, but their CMake packages put /usr/include on
# the include path, which would mix the host's glibc headers into a cross build. Their
# headers are exposed through a directory of their own instead (see the toolchain file).
for d in fmt CLI nlohmann; do
	[[ -d /usr/include/$d ]] || {
		echo "cross-build: /usr/include/$d missing (scripts/install-deps.sh)" >&2
		exit 1
	}
	ln -sfn "/usr/include/$d" "$bdir/hostinc/$d"
done
# Absolute paths: the compiler may be a private copy found through PATH.
cc=$(command -v "$cc") cxx=$(command -v "$cxx") || {
	echo "cross-build: no C/C++ compiler for $arch" >&2
	exit 1
}
tc=$bdir/toolchain.cmake
cat >"$tc.new" <<EOF
# Generated by scripts/cross-build.sh.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR $proc)
set(CMAKE_C_COMPILER $cc)
set(CMAKE_CXX_COMPILER $cxx)
set(CMAKE_C_FLAGS_INIT "$m32")
set(CMAKE_CXX_FLAGS_INIT "$m32")
set(CMAKE_FIND_ROOT_PATH /usr/$triple $bdir/gtest/install)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
# Packages: GTest from the cross build above (GTest_DIR), the header-only ones from /usr.
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
set(CMAKE_CXX_STANDARD_INCLUDE_DIRECTORIES $bdir/hostinc)
set(CMAKE_CXX_IMPLICIT_INCLUDE_DIRECTORIES /usr/include)
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static$m32")
EOF
[[ -z $emu ]] || echo "set(CMAKE_CROSSCOMPILING_EMULATOR $emu)" >>"$tc.new"
if cmp -s "$tc.new" "$tc"; then
	rm "$tc.new"
else
	# Another compiler: CMake caches it, so configure both trees afresh.
	mv "$tc.new" "$tc"
	rm -rf "$bdir/gtest" "$bdir/CMakeCache.txt" "$bdir/CMakeFiles"
fi

if [[ ! -f $bdir/gtest/install/lib/cmake/GTest/GTestConfig.cmake || $tc -nt $bdir/gtest/install/lib/cmake/GTest/GTestConfig.cmake ]]; then
	echo "cross-build: GoogleTest for $arch"
	rm -rf "$bdir/gtest"
	cmake -S /usr/src/googletest -B "$bdir/gtest/build" -DCMAKE_TOOLCHAIN_FILE="$tc" \
		-DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$bdir/gtest/install" >/dev/null
	cmake --build "$bdir/gtest/build" -j "$(nproc)" >/dev/null
	cmake --install "$bdir/gtest/build" >/dev/null
fi

# fmt's CMake package sits in the host's multiarch directory, which a cross build does
# not search; only its header-only target is used.
fmt_dir=$(dirname "$(find /usr/lib/*/cmake/fmt /usr/share/cmake/fmt -name fmt-config.cmake 2>/dev/null | head -1)")
targets=(dblockctl dblock_sample_ramdisk dblock_kernel_abi_test)
[[ ${DBLOCK_XBUILD_UNIT:-0} == 1 ]] && targets+=(dblock_unit_tests dblock_server_tests)
cmake -S "$top" -B "$bdir" -DCMAKE_TOOLCHAIN_FILE="$tc" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DDBLOCK_STATIC_TOOLS=ON -DGTest_DIR="$bdir/gtest/install/lib/cmake/GTest" -Dfmt_DIR="$fmt_dir" -DDBLOCK_FMT_INCLUDE="$bdir/hostinc" >/dev/null
cmake --build "$bdir" -j "$(nproc)" --target "${targets[@]}"
for t in dblockctl dblock_sample_ramdisk dblock_kernel_abi_test; do
	f=$bdir/bin/$t
	file -b "$f" | grep -q 'statically linked' || {
		echo "cross-build: $f is not statically linked" >&2
		exit 1
	}
done
echo "cross-build: userspace for $arch in $bdir/bin"
