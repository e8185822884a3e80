#!/bin/bash
# Last case, debug kernel only (skipped where the kernel has no kmemleak): after a
# workload of its own, a kmemleak scan finds nothing allocated by dblock.ko. It
# runs with the module loaded so that its frames symbolize; leaks from earlier
# cases, whose module instance is gone, show as bare module addresses
# (0xffffffffc...) and count too. Other kernel leaks are printed, not failed.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../dblock-lib.sh"

km=/sys/kernel/debug/kmemleak
if [[ ! -e $km ]]; then
  log "no kmemleak in $(uname -r): skipped"
  exit 77
fi

load_dblock
# Served, written, destroyed.
start_sample leak0 --size 16M --queues 2
dd if=/dev/urandom of=/dev/leak0 bs=64K count=64 oflag=direct status=none
"$DBLOCKCTL" destroy leak0
wait_exit "$SAMPLE_PID" 30
# Server killed under I/O, then destroyed.
start_sample leak1 --size 16M
dd if=/dev/zero of=/dev/leak1 bs=64K count=64 oflag=direct status=none
kill -KILL "$SAMPLE_PID"
wait "$SAMPLE_PID" 2>/dev/null || true
"$DBLOCKCTL" destroy leak1 || true
# Created, never served.
"$DBLOCKCTL" create leak2 --size 8M
"$DBLOCKCTL" destroy leak2

# kmemleak reports an object only when older than 5 s; two scans rule out
# pointers that were in flight during the first.
sleep 6
echo scan >"$km"
sleep 1
echo scan >"$km"
cat "$km" >kmemleak.txt
total=$(grep -c '^unreferenced object' kmemleak.txt || true)
# One record per leak; keep those with a dblock frame or a bare module address.
awk '/^unreferenced object/ {if (rec != "" && keep) print rec; rec = ""; keep = 0}
  {rec = rec $0 "\n"}
  /\[dblock\]|\] 0xffffffff[a-f][0-9a-f]+$/ {keep = 1}
  END {if (rec != "" && keep) print rec}' kmemleak.txt >dblock-leaks.txt
ours=$(grep -c '^unreferenced object' dblock-leaks.txt || true)
log "kmemleak: $total suspected leak(s) in the kernel, $ours from dblock"
if ((total > ours)); then
  log "other suspected leaks (not failing the case):"
  head -n 60 kmemleak.txt >&2
fi
if ((ours > 0)); then
  cat dblock-leaks.txt >&2
  die "kmemleak: $ours leak(s) attributed to dblock.ko"
fi
unload_dblock
