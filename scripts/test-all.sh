#!/bin/bash
# Every test of the project, from a fresh machine:
#   1. unit tests of the userspace (ctest, no kernel needed);
#   2. kernel style: W=1 builds against each guest kernel, checkpatch;
#   3. the guest suite (tests/guest/cases) in a QEMU guest per kernel.
# Ends with one line "N passed, N failed" over all of them.
# DBLOCK_KERNELS selects the kernel lines (default "6.1 6.12").
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cache=${DBLOCK_VM_CACHE:-/var/cache/dblock-vm}
kernels=${DBLOCK_KERNELS:-6.1 6.12}
total_passed=0 total_failed=0

# add_counts LOGFILE: adds the last "N passed, N failed" line of LOGFILE.
add_counts() {
	local counts
	counts=$(grep -oE '[0-9]+ passed, [0-9]+ failed' "$1" | tail -1)
	if [ -z "$counts" ]; then
		echo "test-all: no result line in $1: counted as 1 failure" >&2
		total_failed=$((total_failed + 1))
		return
	fi
	total_passed=$((total_passed + $(echo "$counts" | cut -d' ' -f1)))
	total_failed=$((total_failed + $(echo "$counts" | cut -d' ' -f3)))
}

section() { printf '\n=== %s (%s)\n' "$1" "$(date +%T)"; }

section "install dependencies"
"$top/scripts/install-deps.sh" || exit 1

section "build userspace"
cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || exit 1
cmake --build "$top/build" -j "$(nproc)" || exit 1

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

section "kernel style"
"$top/scripts/check-kernel-style.sh" 2>&1 | tee "$log"
add_counts "$log"

# The guest sees the host's root but not its /tmp: a checkout there (as CI
# may have) is staged outside it.
src=$top
case $top in
/tmp | /tmp/*)
	src=/var/tmp/dblock-stage
	rm -rf "$src" && mkdir -p "$src" && cp -a "$top/." "$src/"
	;;
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
	"$top/vm/run-guest.sh" --kernel "$line" --timeout "${DBLOCK_GUEST_TIMEOUT:-2400}" -- \
		"$src/tests/guest/run-suite.sh" 2>&1 | tee "$log"
	add_counts "$log"
done
rm -f "$log"

echo
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" = 0 ]
