#!/bin/bash
# The randomized tester: random and malformed commands to the control device
# and the channels from several threads for DBLOCK_FUZZ_SECONDS (default 60),
# then every device must be destroyable and the module must unload.  The
# suite fails the case on any WARNING, BUG, Oops or hung task it caused.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../dblock-lib.sh"

load_dblock
"$DBLOCK_BIN/dblock_fuzz" --seconds "${DBLOCK_FUZZ_SECONDS:-60}" --threads 4 \
  --seed "${DBLOCK_FUZZ_SEED:-$RANDOM}"
unload_dblock
