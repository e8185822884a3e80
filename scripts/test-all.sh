#!/bin/bash
# Every test of the project, from a fresh machine:
#   1. unit tests of the userspace (ctest, no kernel needed), with the host's g++,
#      then with sid's g++ and clang and the host's clang (scripts/check-toolchains.sh);
#   2. kernel style: W=1 builds against each guest kernel, checkpatch;
#   3. the guest suite (tests/guest/cases) in a QEMU guest per kernel, its systemd
#      cases (8x) in a second one with systemd as PID 1 (vm/run-guest.sh --init systemd).
# Ends with one line "N passed, N failed, N skipped" over all of them, after the time
# each section took.
# DBLOCK_RBD=0 leaves out the Ceph guests, DBLOCK_INSTALL_TEST=0 the
# installed-package build (case 60 then reports itself skipped),
# DBLOCK_DKMS_TEST=0 the DKMS install (tests/dkms/run.sh), DBLOCK_DEB_TEST=0 the
# Debian packages (tests/deb/run.sh; =host: only make deb, lintian and their
# contents, no guest), DBLOCK_TOOLCHAINS=0 the other toolchains.
# DBLOCK_SYSTEMD_KERNELS the kernel lines whose systemd guest runs (default: all),
# DBLOCK_UBLK_KERNELS those whose suite runs the cases over ublk too (NAME@ublk;
# default: all; the others report those runs skipped).
# DBLOCK_KERNELS selects the kernel lines (default "6.1 6.12 newest rt": Debian 12's
# two, sid's newest, Debian 12's PREEMPT_RT; "debug" adds the KASAN/lockdep kernel);
# DBLOCK_ARCHES the foreign architectures (default "arm64"; "arm64 armhf i386"; "" for
# none).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cache=${DBLOCK_VM_CACHE:-/var/cache/dblock-vm}
export DBLOCK_KERNELS=${DBLOCK_KERNELS:-6.1 6.12 newest rt}
kernels=$DBLOCK_KERNELS
total_passed=0 total_failed=0 total_skipped=0

# add_counts LOGFILE: adds the last "N passed, N failed[, N skipped]" line of LOGFILE.
add_counts() {
	local counts skipped
	counts=$(grep -oE '[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?' "$1" | tail -1)
	if [ -z "$counts" ]; then
		echo "test-all: no result line in $1: counted as 1 failure" >&2
		total_failed=$((total_failed + 1))
		return
	fi
	total_passed=$((total_passed + $(echo "$counts" | cut -d' ' -f1)))
	total_failed=$((total_failed + $(echo "$counts" | cut -d' ' -f3)))
	skipped=$(echo "$counts" | sed -nE 's/.*, ([0-9]+) skipped/\1/p')
	total_skipped=$((total_skipped + ${skipped:-0}))
}

# one_test TAG CMD...: CMD, whose output goes to $log, counts as one test: passed
# (its lines with TAG shown) or failed (its last lines shown).
one_test() {
	local tag=$1
	shift
	if "$@" >"$log" 2>&1; then
		grep -F "$tag" "$log"
		total_passed=$((total_passed + 1))
	else
		tail -n 30 "$log"
		total_failed=$((total_failed + 1))
	fi
}

# section TITLE: starts a section; the time each took is listed at the end.
section_names=() section_secs=() section_start=$SECONDS
section_end() {
	((${#section_names[@]})) || return 0
	section_secs+=($((SECONDS - section_start)))
}
section() {
	section_end
	section_names+=("$1")
	section_start=$SECONDS
	printf '\n=== %s (%s)\n' "$1" "$(date +%T)"
}

section "install dependencies"
"$top/scripts/install-deps.sh" || exit 1

section "build userspace"
cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || exit 1
cmake --build "$top/build" -j "$(nproc)" || exit 1

section "build 32-bit userspace (for the 32-bit-on-64-bit guest case)"
# Debian's multilib has no 32-bit kernel headers; x86's are shared by both.
cmake -S "$top" -B "$top/build-m32" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDBLOCK_BUILD_TESTS=OFF \
	-DDBLOCK_STATIC_TOOLS=ON \
	-DCMAKE_CXX_FLAGS="-m32 -idirafter /usr/include/x86_64-linux-gnu" >/dev/null || exit 1
cmake --build "$top/build-m32" -j "$(nproc)" --target dblock_sample_ramdisk dblockctl dblock-serve ||
	exit 1

section "unit tests"
log=$(mktemp)
ctest --test-dir "$top/build" --output-on-failure 2>&1 | tee "$log"
summary=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -1)
if [ -n "$summary" ]; then
	failed=$(echo "$summary" | sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/')
	all=$(echo "$summary" | sed -E 's/.* out of ([0-9]+).*/\1/')
	echo "unit: $((all - failed)) passed, $failed failed" >"$log"
fi
add_counts "$log"

section "userspace with sid's g++ and clang, and the host's clang"
if [ "${DBLOCK_TOOLCHAINS:-1}" = 1 ]; then
	"$top/scripts/check-toolchains.sh" 2>&1 | tee "$log"
	add_counts "$log"
fi

section "kernel style"
"$top/scripts/check-kernel-style.sh" 2>&1 | tee "$log"
add_counts "$log"

section "installed package (make install, out-of-tree consumers)"
if [ "${DBLOCK_INSTALL_TEST:-1}" = 1 ] && [ -x "$top/tests/install/run.sh" ]; then
	"$top/tests/install/run.sh" --no-guest >"$log" 2>&1 || { tail -30 "$log"; total_failed=$((total_failed + 1)); }
fi

section "DKMS (make dkms-install for each kernel line, each module loaded in its guest)"
if [ "${DBLOCK_DKMS_TEST:-1}" = 1 ]; then
	one_test dkms-test: "$top/tests/dkms/run.sh"
fi

section "Debian packages (make deb, lintian; apt install, use and purge in a guest per kernel line, newest's built in sid)"
case ${DBLOCK_DEB_TEST:-1} in
1) one_test deb-test: "$top/tests/deb/run.sh" ;;
host) one_test deb-test: "$top/tests/deb/run.sh" --no-guest ;;
esac

for line in $kernels; do
	section "guest suite on $line"
	"$top/vm/prepare-kernels.sh" "$line" || { total_failed=$((total_failed + 1)); continue; }
	# shellcheck source=/dev/null
	. "$cache/$line.env"
	if ! "$top/scripts/build-module.sh" "$KDIR" "/var/tmp/dblock-kmod/$KVER" >"$log" 2>&1; then
		cat "$log"
		total_failed=$((total_failed + 1))
		continue
	fi
	# The Ceph cases need a bigger guest of their own, the systemd ones (8x)
	# one where systemd is PID 1; the others share one.
	cases=() rbd_cases=() systemd_cases=()
	for c in "$top"/tests/guest/cases/*.sh; do
		case $(basename "$c") in
		7[0-9]-*) rbd_cases+=("$c") ;;
		8[0-9]-*) systemd_cases+=("$c") ;;
		*) cases+=("$c") ;;
		esac
	done
	transports=(env)
	if [[ " ${DBLOCK_UBLK_KERNELS:-$kernels} " != *" $line "* ]]; then
		transports=(env DBLOCK_TRANSPORTS=dblock
			DBLOCK_TRANSPORTS_WHY="ublk runs on ${DBLOCK_UBLK_KERNELS:-no line} here (DBLOCK_UBLK_KERNELS)")
	fi
	"$top/vm/run-guest.sh" --kernel "$line" --timeout "${DBLOCK_GUEST_TIMEOUT:-3000}" -- \
		"${transports[@]}" "$top/tests/guest/run-suite.sh" "${cases[@]}" 2>&1 | tee "$log"
	add_counts "$log"
	if [ ${#systemd_cases[@]} -gt 0 ] && [[ " ${DBLOCK_SYSTEMD_KERNELS:-$kernels} " == *" $line "* ]]; then
		section "systemd guest suite on $line"
		"$top/vm/run-guest.sh" --kernel "$line" --init systemd --timeout 1500 -- \
			"$top/tests/guest/run-suite.sh" "${systemd_cases[@]}" 2>&1 | tee "$log"
		add_counts "$log"
	fi
	if [ "${DBLOCK_RBD:-1}" = 1 ] && [ ${#rbd_cases[@]} -gt 0 ]; then
		section "Ceph RBD guest suite on $line"
		"$top/vm/run-guest.sh" --kernel "$line" --mem 4096 \
			--timeout "${DBLOCK_GUEST_TIMEOUT:-3000}" -- \
			env DBLOCK_CASE_TIMEOUT=1200 "$top/tests/guest/run-suite.sh" "${rbd_cases[@]}" 2>&1 |
			tee "$log"
		add_counts "$log"
	fi
done

# Foreign architectures (vm/prepare-foreign.sh, scripts/cross-build.sh): the module
# cross-built with W=1 (a warning fails), static cross-built tools, and a guest of that
# architecture running the cases below. DBLOCK_ARCHES selects them (default arm64;
# "arm64 armhf i386" for all); DBLOCK_ARCH_KERNELS_<arch> the kernel lines (arm64:
# "6.1 6.12", others "6.1"). Case 45 (>4 GiB offsets) matters most on the 32-bit ones.
for arch in ${DBLOCK_ARCHES-arm64}; do
	section "cross build and guest suite on $arch"
	lines_var=DBLOCK_ARCH_KERNELS_$arch
	case $arch in
	arm64) lines=${!lines_var:-6.1 6.12} ;;
	*) lines=${!lines_var:-6.1} ;;
	esac
	arch_cases="10-kernel-abi 20-seed-flow 40-fio-verify 45-large-offsets"
	# shellcheck disable=SC2086 # lines is a list
	if ! "$top/scripts/cross-build.sh" "$arch" $lines >"$log" 2>&1; then
		tail -n 40 "$log"
		total_failed=$((total_failed + 1))
		continue
	fi
	grep '^cross-build:' "$log"
	for line in $lines; do
		section "guest suite on $arch $line"
		# The cross builds are made without liburing, so without the ublk
		# transport: its runs are reported as skipped.
		# shellcheck disable=SC2046 # one argument per case
		"$top/vm/run-foreign-guest.sh" --arch "$arch" --kernel "$line" --src "$top" \
			--timeout "${DBLOCK_GUEST_TIMEOUT:-2400}" -- env DBLOCK_TRANSPORTS=dblock \
			DBLOCK_TRANSPORTS_WHY="the cross builds have no liburing, so no ublk transport" "$top/tests/guest/run-suite.sh" \
			$(for c in $arch_cases; do echo "$top/tests/guest/cases/$c.sh"; done) 2>&1 | tee "$log"
		add_counts "$log"
	done
done
rm -f "$log"
section_end

echo
echo "=== section times"
for i in "${!section_names[@]}"; do
	printf '%6ss  %s\n' "${section_secs[$i]}" "${section_names[$i]}"
done
printf '%6ss  total\n' "$SECONDS"
echo
echo "$total_passed passed, $total_failed failed, $total_skipped skipped"
[ "$total_failed" = 0 ]
