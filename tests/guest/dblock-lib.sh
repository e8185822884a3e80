#!/bin/bash
# dblock helpers for guest test cases; sourced after lib.sh.
# shellcheck disable=SC2034 # variables here are used by the scripts that source it

DBLOCK_BIN=${DBLOCK_BIN:-$DBLOCK_ROOT/build/bin}
# Modules are built per kernel by scripts/test-all.sh (scripts/build-module.sh).
DBLOCK_KO=${DBLOCK_KO:-${DBLOCK_KMOD_DIR:-/var/tmp/dblock-kmod}/$(uname -r)/dblock.ko}
SAMPLE=$DBLOCK_BIN/dblock_sample_ramdisk
DBLOCKCTL=$DBLOCK_BIN/dblockctl

# The kernel interface the case runs over (run-suite.sh): dblock (dblock.ko)
# or ublk (the kernel's ublk_drv; the tools' --transport auto takes it when
# dblock.ko is not loaded).
DBLOCK_TRANSPORT=${DBLOCK_TRANSPORT:-dblock}

# disk_sysfs NAME: /sys/block/DISK of /dev/NAME (over ublk a link to ublkbN).
disk_sysfs() {
  echo "/sys/block/$(basename "$(readlink -f "/dev/$1")")"
}

# part_path NAME N: partition N of /dev/NAME under the kernel's name for it
# (over ublk the disk is ublkbN, its partitions ublkbNpM).  Linux puts a "p"
# before the number only when the disk's name ends in a digit.
part_path() {
  local disk
  disk=$(basename "$(readlink -f "/dev/$1")")
  [[ $disk == *[0-9] ]] && disk+=p
  echo "/dev/$disk$2"
}

# discards_done NAME: discard requests served for /dev/NAME: dblock.ko counts
# those its server answered; over ublk, the block layer's count of discards
# completed (field 12 of the disk's stat), which only the server completes.
discards_done() {
  if [[ $DBLOCK_TRANSPORT == ublk ]]; then
    awk '{ print $12 }' "$(disk_sysfs "$1")/stat"
  else
    cat "/sys/block/$1/dblock/discards"
  fi
}

# A failed case must not leave servers, mounts or devices to the next one.
# A case with more to undo defines case_cleanup, which runs once servers
# and devices are gone.
cleanup_dblock() {
  local rc=$? name
  trap - EXIT
  set +e
  if grep -q '^dblock ' /proc/modules; then
    # Not the checkout itself, which is a share under /tmp when it lives there.
    awk -v keep="$DBLOCK_ROOT" '$2 ~ /^\/tmp\// && $2 != keep && index($2, keep "/") != 1 { print $2 }' \
      /proc/mounts | sort -r | xargs -r umount -l 2>/dev/null
    pkill -KILL -f "$DBLOCK_BIN/" 2>/dev/null
    sleep 0.5
    for name in $("$DBLOCKCTL" list --json 2>/dev/null | sed -n 's/.*"name": *"\([^"]*\)".*/\1/p'); do
      "$DBLOCKCTL" destroy --force "$name" >/dev/null 2>&1 || true
    done
    rmmod dblock 2>/dev/null || true
  fi
  if grep -q '^ublk_drv ' /proc/modules; then
    pkill -KILL -f "$DBLOCK_BIN/" 2>/dev/null
    sleep 0.5
    for name in /dev/ublkc*; do
      [[ -e $name ]] && "$DBLOCKCTL" destroy --force "ublkb${name#/dev/ublkc}" >/dev/null 2>&1
    done
    find /dev -maxdepth 1 -lname 'ublkb*' -delete
    rmmod ublk_drv 2>/dev/null || true
  fi
  if declare -F case_cleanup >/dev/null; then case_cleanup; fi
  exit "$rc"
}

load_dblock() {
  if [[ $DBLOCK_TRANSPORT == ublk ]]; then
    if grep -q '^dblock ' /proc/modules; then rmmod dblock; fi
    if ! modprobe ublk_drv 2>/tmp/modprobe.err; then
      log "no ublk_drv in $(uname -r) ($(head -n 1 /tmp/modprobe.err)): skipped"
      exit 77
    fi
    trap cleanup_dblock EXIT
    return
  fi
  [[ -f $DBLOCK_KO ]] || die "no module at $DBLOCK_KO (built by scripts/test-all.sh)"
  trap cleanup_dblock EXIT
  grep -q '^dblock ' /proc/modules || insmod "$DBLOCK_KO" || die "insmod $DBLOCK_KO failed"
  wait_for_path /dev/dblockctl 5
}

# unload_dblock: every device must be gone first; rmmod must then succeed.
unload_dblock() {
  local left
  if [[ $DBLOCK_TRANSPORT == ublk ]]; then
    left=$(find /dev -maxdepth 1 -name 'ublkc*' | wc -l)
    assert_eq 0 "$left" "ublk devices left before rmmod"
    rmmod ublk_drv || die "rmmod ublk_drv failed"
    wait_gone /dev/ublk-control 5
    return
  fi
  left=$("$DBLOCKCTL" list --json | grep -c '"name"' || true)
  assert_eq 0 "$left" "devices left before rmmod"
  rmmod dblock || die "rmmod dblock failed"
  wait_gone /dev/dblockctl 5
}

# start_sample NAME [OPTIONS...]: serve /dev/NAME from a RAM backend in the
# background; sets SAMPLE_PID. Waits for the disk to appear.
start_sample() {
  local name=$1
  shift
  forget_patterns "$name"
  "$SAMPLE" --name "$name" "$@" >"/tmp/sample-$name.log" 2>&1 &
  SAMPLE_PID=$!
  local deadline=$((SECONDS + 30))
  until [[ -b /dev/$name ]]; do
    kill -0 "$SAMPLE_PID" 2>/dev/null || { cat "/tmp/sample-$name.log" >&2; die "server for $name exited early"; }
    ((SECONDS < deadline)) || die "timed out waiting for /dev/$name"
    sleep 0.1
  done
}

# wait_exit PID TIMEOUT: wait for a background child and check it exited 0.
wait_exit() {
  local pid=$1 deadline=$((SECONDS + ${2:-30})) rc=0
  while kill -0 "$pid" 2>/dev/null; do
    ((SECONDS < deadline)) || die "process $pid did not exit within ${2:-30}s"
    sleep 0.1
  done
  wait "$pid" || rc=$?
  assert_eq 0 "$rc" "exit code of process $pid"
}

# Files of several sizes, checksummed into DIR/../SUMS (relative paths).
write_files() {
  local dir=$1 n=${2:-20} i
  mkdir -p "$dir"
  for ((i = 0; i < n; i++)); do
    head -c $(((i * 37 % 97 + 1) * 4099)) /dev/urandom >"$dir/file$i"
  done
  dd if=/dev/urandom of="$dir/big" bs=1M count=24 status=none
  (cd "$dir" && sha256sum ./* >/tmp/sums.txt)
}

check_files() {
  (cd "$1" && sha256sum -c --quiet /tmp/sums.txt) || die "checksums differ in $1"
}

SERVE=$DBLOCK_BIN/dblock-serve

# start_serve NAME ARGS...: dblock-serve in the background, its output
# appended to /tmp/serve-NAME.log; sets SERVE_PID and waits until it serves
# /dev/NAME (or, with --attach, until it took the device over).
start_serve() {
  local name=$1
  shift
  local logf=/tmp/serve-$name.log ready="serving" from=1
  [[ " $* " == *" --attach "* || " $* " == *" --create-or-attach "* ]] || forget_patterns "$name"
  if [[ " $* " == *" --attach "* ]]; then ready="took over /dev/$name"; fi
  # It says either.
  if [[ " $* " == *" --create-or-attach "* ]]; then ready=" /dev/$name "; fi
  # Only this server's lines count: an earlier one's are in the same log.
  if [[ -f $logf ]]; then from=$(($(wc -l <"$logf") + 1)); fi
  "$SERVE" "$name" "$@" >>"$logf" 2>&1 &
  SERVE_PID=$!
  local deadline=$((SECONDS + 30))
  until [[ -b /dev/$name && $(tail -n +"$from" "$logf") == *"$ready"* ]]; do
    kill -0 "$SERVE_PID" 2>/dev/null || { cat "$logf" >&2; die "dblock-serve $name exited early"; }
    ((SECONDS < deadline)) || { cat "$logf" >&2; die "timed out waiting for /dev/$name"; }
    sleep 0.1
  done
}

# fio_verify DEV TAG FIO-ARGS...: fio writes DEV with direct libaio I/O and
# crc32c checksums, then reads everything back and checks it; any mismatch
# or I/O error fails the case.  Output in /tmp/fio.TAG.out.
fio_verify() {
  local dev=$1 tag=$2
  shift 2
  fio --name="$tag" --filename="$dev" --ioengine=libaio --direct=1 --verify=crc32c \
    --verify_fatal=1 --do_verify=1 --group_reporting --output-format=terse "$@" \
    >"/tmp/fio.$tag.out" || { cat "/tmp/fio.$tag.out"; die "fio $tag verify on $dev failed"; }
  log "fio $tag: $(grep -v '^fio:' "/tmp/fio.$tag.out" | cut -d';' -f3,4 | head -1)"
}

# start_fio_writers DIR TAG DIRECT_SIZE BUFFERED_SIZE: in the background, direct
# (libaio, two jobs) and buffered (psync, fsync every 64 writes) random writers in
# DIR, each verifying what it wrote as it goes, until check_fio_writers TAG stops
# them: however slow the guest, they outlast the servers a case replaces under
# them (a fixed 45 s ran out on 6.12-rt under load, whose takeover waits for a
# 30 s request timeout).  Sets fio_pid; output in /tmp/fio.TAG.out.
start_fio_writers() {
  local dir=$1 tag=$2 direct_size=$3 buffered_size=$4
  # --runtime only bounds a case that never stops them.
  fio --directory="$dir" --ioengine=libaio --iodepth=16 --verify=crc32c --verify_fatal=1 \
    --verify_backlog=128 --time_based --runtime=1800 --group_reporting --output-format=terse \
    --name=direct --direct=1 --rw=randwrite --bsrange=4k-128k --size="$direct_size" --numjobs=2 \
    --name=buffered --direct=0 --ioengine=psync --rw=randwrite --bs=16k --size="$buffered_size" \
    --fsync=64 >"/tmp/fio.$tag.out" 2>&1 &
  fio_pid=$!
}

# disk_writes NAME: writes the disk of /dev/NAME has completed (the block
# layer's count, field 5 of its stat: the same over both transports).
disk_writes() {
  awk '{ print $5 }' "$(disk_sysfs "$1")/stat"
}

# wait_writes NAME COUNT TAG: until /dev/NAME has completed more than COUNT
# writes, while start_fio_writers's fio (TAG) runs: so that what comes next
# (a kill, a handover) catches its I/O in flight.
wait_writes() {
  local deadline=$((SECONDS + 120))
  until (($(disk_writes "$1") > $2)); do
    kill -0 "$fio_pid" 2>/dev/null || { cat "/tmp/fio.$3.out"; die "fio ended before the server was replaced"; }
    ((SECONDS < deadline)) || die "no write progress on /dev/$1 in 120s"
    sleep 0.2
  done
}

# check_fio_writers TAG: stops start_fio_writers's fio, which must still be
# running (an I/O or verify error ends it: --verify_fatal), and checks that it
# reports no error.
check_fio_writers() {
  local out=/tmp/fio.$1.out rc=0
  kill -0 "$fio_pid" 2>/dev/null || { cat "$out"; die "fio ended before it was stopped"; }
  kill -INT "$fio_pid"
  wait "$fio_pid" || rc=$?
  # fio exits 128 when a signal ends its run, 1 on an error.
  ((rc == 0 || rc == 128)) || { cat "$out"; die "fio failed across the takeovers (exit $rc)"; }
  # terse v3 lines: field 5 is the job's error number.
  grep '^3;' "$out" | awk -F';' '$5 != 0 { bad = 1 } END { exit bad || NR == 0 }' ||
    { cat "$out"; die "fio reported an error"; }
  log "fio (name;error;read KiB;write KiB): $(grep '^3;' "$out" | cut -d';' -f3,5,6,47 | head -n 1)"
}

# Bytes a file really occupies (its holes excluded).
allocated_bytes() {
  echo $(($(stat -c %b "$1") * $(stat -c %B "$1")))
}

# --- Online resize, checked through the disk with direct I/O ---
# Each check_grow/check_shrink writes MiB-sized random patterns into the
# disk (/tmp/resize-NAME.MIB) and checks all of them that lie below the
# current end, so that data written before a resize is checked after it.
# The disk must hold nothing else that matters (no mounted file system).

# forget_patterns NAME: a new disk /dev/NAME holds none of the patterns an
# earlier one of that name was given (in an earlier case, or the same case
# over the other transport).
forget_patterns() {
  rm -f "/tmp/resize-$1".*
}

# assert_disk_size NAME MIB: the disk's size, as blockdev and sysfs see it.
assert_disk_size() {
  assert_eq $(($2 << 20)) "$(blockdev --getsize64 "/dev/$1")" "size of /dev/$1 (blockdev)"
  assert_eq $(($2 << 11)) "$(cat "$(disk_sysfs "$1")/size")" "size of /dev/$1 (sysfs)"
}

# need_online_resize: over ublk, skips the case (exit 77) on a kernel older
# than 6.14, whose ublk has no UBLK_U_CMD_UPDATE_SIZE (its refusal is checked
# in 66-ublk.sh).  By version, not by asking dblock: a dblock that stopped
# seeing the command on 6.14 and later must fail here, not skip.
need_online_resize() {
  [[ $DBLOCK_TRANSPORT == ublk ]] || return 0
  local major minor
  IFS=. read -r major minor _ <<<"$(uname -r)"
  if ((major < 6 || (major == 6 && minor < 14))); then
    log "ublk on $(uname -r) has no online resize (UBLK_U_CMD_UPDATE_SIZE, Linux 6.14): skipped"
    exit 77
  fi
}

# read_mib NAME MIB: MiB number MIB of /dev/NAME, read with direct I/O.
read_mib() {
  dd if="/dev/$1" bs=1M skip="$2" count=1 iflag=direct status=none
}

# put_pattern NAME MIB: random data written to MiB number MIB of /dev/NAME.
put_pattern() {
  local name=$1 mib=$2
  head -c 1M /dev/urandom >"/tmp/resize-$name.$mib"
  dd if="/tmp/resize-$name.$mib" of="/dev/$name" bs=1M seek="$mib" count=1 oflag=direct \
    conv=notrunc status=none || die "writing MiB $mib of /dev/$name failed"
  echo "$mib" >>"/tmp/resize-$name.list"
}

# check_patterns NAME: every pattern below the disk's end reads back equal.
check_patterns() {
  local name=$1 mib size_mib
  size_mib=$(($(blockdev --getsize64 "/dev/$name") >> 20))
  for mib in $(sort -un "/tmp/resize-$name.list"); do
    ((mib < size_mib)) || continue
    cmp -n $((1 << 20)) "/tmp/resize-$name.$mib" <(read_mib "$name" "$mib") ||
      die "MiB $mib of /dev/$name differs from what was written there"
  done
}

# check_grow NAME MIB: `dblockctl resize` grows the served /dev/NAME to MIB
# MiB.  Checked: the new size; a pattern written below the old end before
# the grow and one written past it after the grow read back equal; the new
# last MiB, never written, reads as zeroes.  Once it returns, requests past
# the old end have been served: the server has taken the new size (and
# grown its backend).
check_grow() {
  local name=$1 mib=$2 old
  old=$(($(blockdev --getsize64 "/dev/$name") >> 20))
  ((mib >= old + 3)) || die "check_grow $name $mib: not 3 MiB more than its $old MiB"
  put_pattern "$name" $((old - 1))
  "$DBLOCKCTL" resize "$name" "${mib}M" || die "dblockctl resize $name ${mib}M failed"
  assert_disk_size "$name" "$mib"
  put_pattern "$name" $((old + 1))
  check_patterns "$name"
  cmp -n $((1 << 20)) /dev/zero <(read_mib "$name" $((mib - 1))) ||
    die "the last MiB of /dev/$name, past its old end and never written, is not zeroes"
  log "/dev/$name grown from $old to $mib MiB"
}

# check_shrink NAME MIB: `dblockctl resize` shrinks the served /dev/NAME to
# MIB MiB.  Checked: the new size; the patterns below the new end read back
# equal, and one written after the shrink too (so the server has served
# after the shrink: it has taken the new size); a read at the new end
# returns nothing and a write there fails.
check_shrink() {
  local name=$1 mib=$2 old n
  old=$(($(blockdev --getsize64 "/dev/$name") >> 20))
  ((mib < old && mib >= 2)) || die "check_shrink $name $mib: not smaller than its $old MiB"
  "$DBLOCKCTL" resize "$name" "${mib}M" || die "dblockctl resize $name ${mib}M failed"
  assert_disk_size "$name" "$mib"
  put_pattern "$name" $((mib - 1))
  check_patterns "$name"
  n=$(read_mib "$name" "$mib" | wc -c) || die "reading at the new end of /dev/$name failed"
  assert_eq 0 "$n" "bytes read at the new end of /dev/$name"
  if dd if=/dev/zero of="/dev/$name" bs=1M seek="$mib" count=1 oflag=direct conv=notrunc \
    status=none 2>/dev/null; then
    die "a write at the new end of /dev/$name succeeded"
  fi
  log "/dev/$name shrunk from $old to $mib MiB"
}
