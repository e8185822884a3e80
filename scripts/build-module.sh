#!/bin/bash
# Builds dblock.ko against the kernel build tree KDIR in OUTDIR, a copy of
# the module's sources, so that modules for several kernels can coexist.
# Usage: build-module.sh KDIR OUTDIR [extra make arguments, e.g. W=1, or
# ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- for a foreign kernel's headers]
set -euo pipefail
kdir=$1 out=$2
shift 2
top=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out/include/uapi/linux" "$out/kernel/probes"
cp "$top/Kbuild" "$out/"
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
