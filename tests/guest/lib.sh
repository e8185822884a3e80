#!/bin/bash
# Helpers for guest test cases (tests/guest/cases/*.sh). Runs inside the QEMU guest,
# as root, in the chroot that vm/run-guest.sh sets up. A case sources this file:
#   . "$(dirname "$0")/../lib.sh"
# shellcheck disable=SC2034 # variables here are used by the scripts that source it

# Kernel log lines that fail a case (grep -E). Taint notices for out-of-tree or
# unsigned modules are expected and filtered by DMESG_OK_RE. On PREEMPT_RT spinlocks
# sleep: sleeping in atomic context and workqueue lockups are named on their own, so
# that a kernel which prints them without "BUG:" still fails the case.
DMESG_BAD_RE='WARNING|\bBUG\b|Oops|general protection|lockdep|possible circular locking|hung_task|blocked for more than|Call Trace|KASAN|UBSAN|kmemleak|sleeping function called from invalid context|scheduling while atomic|workqueue lockup|soft lockup'
# kmemleak's scan summary (debug kernel: automatic scans run every 10 min) is left to
# cases/99-kmemleak.sh, which attributes the leaks.
DMESG_OK_RE='module verification failed|loading out-of-tree module taints kernel|taints kernel|dblock-suite:|kmemleak: [0-9]+ new suspected memory leaks'

DBLOCK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

log() { echo "[$(date +%T)] $*" >&2; }
die() { echo "FATAL: $*" >&2; exit 1; }

# assert_eq EXPECTED ACTUAL [MESSAGE]
assert_eq() {
  [[ $1 == "$2" ]] || die "${3:-assert_eq}: expected '$1', got '$2'"
}

# wait_for_path PATH TIMEOUT_SEC: wait until PATH exists (e.g. a /dev node).
wait_for_path() {
  local path=$1 deadline=$((SECONDS + ${2:-10}))
  until [[ -e $path ]]; do
    ((SECONDS < deadline)) || die "timed out after ${2:-10}s waiting for $path"
    sleep 0.1
  done
}

# wait_gone PATH TIMEOUT_SEC: wait until PATH no longer exists.
wait_gone() {
  local path=$1 deadline=$((SECONDS + ${2:-10}))
  while [[ -e $path ]]; do
    ((SECONDS < deadline)) || die "timed out after ${2:-10}s waiting for $path to go away"
    sleep 0.1
  done
}

# kver_line: the guest kernel's major.minor ("6.1", "6.12", "7.2").
kver_line() {
  local r
  r=$(uname -r)
  echo "${r%%.*}.$(echo "$r" | cut -d. -f2)"
}

# dmesg_bad FILE: print the lines of FILE that indicate a kernel problem.
dmesg_bad() {
  grep -E "$DMESG_BAD_RE" "$1" | grep -Ev "$DMESG_OK_RE" || true
}
