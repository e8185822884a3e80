#!/bin/bash
# The module through its raw ABI: validation of every field, create / info /
# list / destroy, exclusive channel, mmap and SERVE checks, data round trips
# at random offsets and sizes up to twice the largest I/O, rejected stale and
# double completions, server errors, EBUSY while open, server death.  The
# destroy/open race runs on its own in 23-destroy-open-race.sh.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../dblock-lib.sh"

load_dblock
"$DBLOCK_BIN/dblock_kernel_abi_test" --gtest_brief=1 --gtest_filter='-DestroyOpenRace.*'
unload_dblock
