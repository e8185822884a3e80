#!/bin/bash
# rmmod is refused while a server holds a device's channel or a disk is
# open, and removes idle devices (created, no server) cleanly.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../dblock-lib.sh"

load_dblock
start_sample busy --size 16M
if rmmod dblock 2>/dev/null; then die "rmmod succeeded while a server was attached"; fi
"$DBLOCKCTL" destroy busy
wait_exit "$SAMPLE_PID" 30

"$DBLOCKCTL" create idle1 --size 8M
"$DBLOCKCTL" create idle2 --size 8M
wait_for_path /dev/dblock 5
rmmod dblock || die "rmmod with idle devices failed"
wait_gone /dev/dblockctl 5
[[ ! -e /sys/class/dblock ]] || die "/sys/class/dblock left behind"
