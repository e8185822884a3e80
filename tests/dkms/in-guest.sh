#!/bin/bash
# In the guest (tests/dkms/run.sh): load the DKMS-built module KO, check that
# the kernel runs that build, then the seed flow with it.
# Usage: in-guest.sh KO SHA256 (of KO as the host saw it)
set -euo pipefail
ko=$1 want=$2
top=$(cd "$(dirname "$0")/../.." && pwd)
if grep -q '^dblock ' /proc/modules; then rmmod dblock; fi
got=$(sha256sum <"$ko" | cut -d' ' -f1)
[[ $got == "$want" ]] || { echo "FATAL: $ko differs from the host's (stale 9p cache?)" >&2; exit 1; }
insmod "$ko"
[[ -d /sys/module/dblock ]] || { echo "FATAL: insmod $ko did not load dblock" >&2; exit 1; }
echo "loaded $ko on $(uname -r): $(grep '^dblock ' /proc/modules)"
# load_dblock (dblock-lib.sh) sees the module loaded and keeps it.
DBLOCK_KO=$ko "$top/tests/guest/run-suite.sh" "$top/tests/guest/cases/20-seed-flow.sh"
