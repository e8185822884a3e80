#!/bin/bash
# Builds dblock.ko against the kernel build tree KDIR in OUTDIR, a copy of
# the module's sources, so that modules for several kernels can coexist.
# Usage: build-module.sh KDIR OUTDIR [extra make arguments, e.g. W=1, or
# ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- for a foreign kernel's headers]
# A KDIR inside the sid root file system (vm/sid-root.sh: the newest kernel's headers,
# which need sid's toolchain) is built there, with the same paths.
set -euo pipefail
kdir=$1 out=$2
shift 2
top=$(cd "$(dirname "$0")/.." && pwd)
sid_root=${DBLOCK_VM_CACHE:-/var/cache/dblock-vm}/sid-root
case $kdir in
"$sid_root"/*)
	mkdir -p "$out"
	DBLOCK_SID_BIND="$(cd "$out" && pwd -P)" exec "$top/vm/sid-root.sh" run -- \
		"$top/scripts/build-module.sh" "${kdir#"$sid_root"}" "$out" "$@"
	;;
esac
mkdir -p "$out/include/uapi/linux" "$out/kernel/probes"
cp "$top/Kbuild" "$top/dkms.conf" "$out/"
cp "$top"/kernel/*.[ch] "$out/kernel/"
cp "$top"/kernel/probes/* "$out/kernel/probes/"
cp "$top/include/uapi/linux/dblock.h" "$out/include/uapi/linux/"
rm -f "$out/kernel/dblock_probes.h"
# The probes must see the same target as the module (ARCH=, CROSS_COMPILE=, ...);
# warning levels (W=1) are left out: a probe only has to compile.
probe_args=()
for arg in "$@"; do
	case $arg in
	W=*) ;;
	*=*) probe_args+=("$arg") ;;
	esac
done
"$top/kernel/probes/run-probes.sh" "$kdir" "$out/kernel/dblock_probes.h" ${probe_args[@]+"${probe_args[@]}"}
make -C "$kdir" M="$out" "$@" modules
