#!/bin/bash
# Kernel code checks that need no guest: dblock.ko builds with W=1 and no
# warning against each guest kernel's headers, checkpatch --strict is
# clean, and make explains missing headers.  checkpatch.pl comes from Debian's linux-source-6.12 package.
# Prints a PASS/FAIL line per check and "kernel-style: N passed, N failed".
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cache=${DBLOCK_VM_CACHE:-/var/cache/dblock-vm}
tools=${DBLOCK_TOOLS_CACHE:-/var/cache/dblock-tools}
passed=0 failed=0

result() { # NAME STATUS DETAIL-FILE
	if [ "$2" = 0 ]; then
		echo "PASS $1"
		passed=$((passed + 1))
	else
		echo "FAIL $1"
		sed 's/^/    /' "$3" | head -40
		failed=$((failed + 1))
	fi
}

for line in ${DBLOCK_KERNELS:-6.1 6.12 newest rt}; do
	"$top/vm/prepare-kernels.sh" "$line" >/dev/null
	# shellcheck source=/dev/null
	. "$cache/$line.env"
	log=$(mktemp)
	if "$top/scripts/build-module.sh" "$KDIR" "/var/tmp/dblock-kmod/$KVER" W=1 >"$log" 2>&1 &&
	    ! grep -qiE 'warning|error' "$log"; then
		status=0
	else
		status=1
	fi
	result "build-W=1-$KVER" $status "$log"
	rm -f "$log"
done

# Without kernel headers, make says what to install or which KDIR to pass.
log=$(mktemp)
if make -s -C "$top" module KDIR=/nonexistent/kernel-headers >"$log" 2>&1; then
	status=1
else
	grep -q 'apt install linux-headers-' "$log" && grep -q 'make KDIR=' "$log"
	status=$?
fi
result make-without-headers-explains $status "$log"
rm -f "$log"

checkpatch=$tools/linux-source-6.12/scripts/checkpatch.pl
if [ ! -x "$checkpatch" ]; then
	"$top/scripts/install-deps.sh" linux-source-6.12 >/dev/null
	mkdir -p "$tools"
	tar -C "$tools" -xf /usr/src/linux-source-6.12.tar.xz \
		linux-source-6.12/scripts/checkpatch.pl \
		linux-source-6.12/scripts/spelling.txt \
		linux-source-6.12/scripts/const_structs.checkpatch
fi
log=$(mktemp)
(cd "$top" && "$checkpatch" --no-tree --strict --quiet -f \
	kernel/*.c kernel/*.h kernel/probes/*.c include/uapi/linux/dblock.h) >"$log" 2>&1
result checkpatch $? "$log"
rm -f "$log"

echo "kernel-style: $passed passed, $failed failed"
[ "$failed" = 0 ]
