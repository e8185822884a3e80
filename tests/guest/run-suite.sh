#!/bin/bash
# Run guest test cases inside the QEMU guest (see vm/run-guest.sh):
#   tests/guest/run-suite.sh [CASE.sh ...]      (default: tests/guest/cases/*.sh)
# A case fails on a non-zero exit, on timeout (DBLOCK_CASE_TIMEOUT, default 300 s),
# or when the kernel log it produced matches DMESG_BAD_RE (lib.sh).  A case that
# exits 77 could not run here (it says why): it is counted as skipped, never as
# passed.
# A case that runs unchanged over the kernel's ublk too says so in a line
# "# dblock-transports: dblock ublk": it runs once per transport, the second
# time as NAME@ublk with DBLOCK_TRANSPORT=ublk (dblock-lib.sh's load_dblock
# then loads ublk_drv instead of dblock.ko, or skips where there is none).
# DBLOCK_TRANSPORTS (default "dblock ublk") lists the transports to run
# (those the build under test has, or those asked for here): a case's run over
# another is reported as skipped, with DBLOCK_TRANSPORTS_WHY as the reason.
# Per-case output and dmesg go to $DBLOCK_OUT/cases/ (or a dir under /tmp).
# Each case runs in a fresh scratch dir under /tmp as its cwd (the root is read-only:
# tools like fio write state files to the cwd); DBLOCK_ROOT is the checkout.
# Set DBLOCK_VERBOSE=1 to also stream each case's output.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$HERE/lib.sh"

default_timeout=${DBLOCK_CASE_TIMEOUT:-300}
logdir=${DBLOCK_OUT:+$DBLOCK_OUT/cases}
logdir=${logdir:-$(mktemp -d /tmp/dblock-suite.XXXXXX)}
mkdir -p "$logdir"

(($#)) || set -- "$HERE"/cases/*.sh
[[ -e $1 ]] || die "no test cases found"

passed=0 failed=0 skipped=0
export DBLOCK_ROOT
# run_case PATH NAME TRANSPORT: runs one case and counts its result.
run_case() {
  local case_path=$1 name=$2 transport=$3 scratch out kmsg own case_timeout marker start rc took
  local bad reason
  scratch=$(mktemp -d "/tmp/$name.XXXXXX")
  out=$logdir/$name.out kmsg=$logdir/$name.dmesg
  # A unique marker in the kernel log: what follows it is this case's.
  # A case may need longer: a "# dblock-timeout: SECONDS" line scales with
  # DBLOCK_CASE_TIMEOUT as the default 300 s does.
  own=$(sed -n 's/^# dblock-timeout: *\([0-9]*\).*/\1/p' "$case_path" | head -n 1)
  case_timeout=$((${own:-300} * default_timeout / 300))
  marker="dblock-suite: begin $name $$.$RANDOM"
  echo "$marker" >/dev/kmsg
  start=$SECONDS
  rc=0
  if [[ ${DBLOCK_VERBOSE:-0} == 1 ]]; then
    (cd "$scratch" && DBLOCK_TRANSPORT=$transport timeout -k 10 "$case_timeout" bash "$case_path" </dev/null 2>&1) |
      tee "$out" || rc=${PIPESTATUS[0]}
  else
    (cd "$scratch" && DBLOCK_TRANSPORT=$transport timeout -k 10 "$case_timeout" bash "$case_path" </dev/null >"$out" 2>&1) || rc=$?
  fi
  rm -rf --one-file-system "$scratch"
  took=$((SECONDS - start))
  dmesg | sed -n "\\|$marker|,\$p" | tail -n +2 >"$kmsg"
  bad=$(dmesg_bad "$kmsg")

  reason=""
  if ((rc == 124 || rc == 137)); then
    reason="timed out after ${case_timeout}s"
  elif ((rc != 0)); then
    reason="exit code $rc"
  fi
  if [[ -n $bad ]]; then
    reason="${reason:+$reason; }kernel log has $(wc -l <<<"$bad") bad line(s)"
  fi

  if ((rc == 77)) && [[ -z $bad ]]; then
    echo "SKIP $name: $(grep -i 'skip' "$out" | tail -n 1)"
    skipped=$((skipped + 1))
  elif [[ -z $reason ]]; then
    echo "PASS $name (${took}s)"
    passed=$((passed + 1))
  else
    echo "FAIL $name (${took}s): $reason"
    [[ -z $bad ]] || { echo "--- kernel log:"; echo "$bad" | head -n 40; }
    echo "--- last lines of output ($out):"
    tail -n 30 "$out"
    echo "---"
    failed=$((failed + 1))
  fi
}

for case_path in "$@"; do
  case_path=$(realpath "$case_path")
  transports=$(sed -n 's/^# dblock-transports: *//p' "$case_path" | head -n 1)
  for transport in ${transports:-dblock}; do
    name=$(basename "$case_path" .sh)
    [[ $transport == dblock ]] || name+=@$transport
    if [[ " ${DBLOCK_TRANSPORTS:-dblock ublk} " != *" $transport "* ]]; then
      echo "SKIP $name: not run over $transport here (DBLOCK_TRANSPORTS=$DBLOCK_TRANSPORTS: ${DBLOCK_TRANSPORTS_WHY:-not asked for})"
      skipped=$((skipped + 1))
      continue
    fi
    run_case "$case_path" "$name" "$transport"
  done
done

echo "guest $(uname -r): $passed passed, $failed failed, $skipped skipped"
((failed == 0))
