#!/bin/bash
# destroy without --force raced by opens of the disk, over and over: either
# destroy refuses (EBUSY) because the disk is open, or the open fails; a
# destroy never succeeds while a disk opened meanwhile stays open.  The race
# is DestroyOpenRace in tests/kernel_abi/abi_test.cc (case 10 runs the rest).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../dblock-lib.sh"

load_dblock
"$DBLOCK_BIN/dblock_kernel_abi_test" --gtest_brief=1 --gtest_filter='DestroyOpenRace.*'
unload_dblock
