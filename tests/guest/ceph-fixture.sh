#!/bin/bash
# A throwaway Ceph cluster on 127.0.0.1 (no systemd, no network), for tests
# and benchmarks: one monitor, N bluestore OSDs on sparse files, optionally a
# manager, everything (config, keyrings, data, sockets, pids, logs) in one
# directory.
#
# Sourced (cases, bench):
#   . tests/guest/ceph-fixture.sh
#   ceph_start [--osds N] [--port P] [--mgr] [--dir DIR]   # exports CEPH_CONF, CEPH_DIR
#   ceph_create_image NAME SIZE                             # in pool "rbd"
#   ceph_kill_osd ID                                        # SIGKILL one OSD
#   ceph_stop                                               # kill -9 all, rm -rf DIR
# Run:
#   tests/guest/ceph-fixture.sh start [OPTIONS]   prints CEPH_CONF=..., CEPH_DIR=...
#   tests/guest/ceph-fixture.sh stop DIR
#
# With 3 OSDs the pool has size 3, min_size 2 (one OSD may die); with fewer,
# size = min_size = 1. Needs ceph-mon, ceph-osd, ceph-common (ceph-mgr for
# --mgr); in a QEMU guest also `-cpu max`, a hostname and `lo` up (vm/run-guest.sh
# does all three). Every wait is bounded: a fixture that cannot come up fails
# with the daemon logs instead of hanging.

CEPH_FIXTURE_TIMEOUT=${CEPH_FIXTURE_TIMEOUT:-240}

_ceph_log() { echo "[$(date +%T)] ceph-fixture: $*" >&2; }

_ceph_fail() {
  local f
  _ceph_log "FAILED: $*"
  for f in "$CEPH_DIR"/log/*.log; do
    [[ -f $f ]] || continue
    echo "--- tail $f" >&2
    tail -n 25 "$f" >&2
  done
  return 1
}

# _ceph_cli ARGS...: the ceph CLI with a bounded wait (it is slow: Python).
_ceph_cli() { timeout 60 ceph --connect-timeout 30 "$@"; }

ceph_start() {
  local osds=1 port="" mgr=0 dir=""
  while (($#)); do
    case $1 in
      --osds) osds=$2; shift 2 ;;
      --port) port=$2; shift 2 ;;
      --mgr) mgr=1; shift ;;
      --dir) dir=$2; shift 2 ;;
      *) _ceph_log "unknown option $1"; return 2 ;;
    esac
  done
  local t0=$SECONDS
  [[ -n $port ]] || port=$((20000 + RANDOM % 20000))
  [[ -n $dir ]] || dir=$(mktemp -d /tmp/ceph-fixture.XXXXXX)
  mkdir -p "$dir"/{run,log,mon.a}
  export CEPH_DIR=$dir CEPH_CONF=$dir/ceph.conf
  local size=1 min_size=1
  if ((osds >= 3)); then size=3 min_size=2; fi
  local fsid
  fsid=$(cat /proc/sys/kernel/random/uuid)
  cat >"$CEPH_CONF" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$port,v1:127.0.0.1:$((port + 1))]
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
public network = 127.0.0.0/8
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $dir/admin.keyring
osd pool default size = $size
osd pool default min size = $min_size
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
mon data avail warn = 1
mon data avail crit = 0
osd crush chooseleaf type = 0
osd objectstore = bluestore
bluestore block path = $dir/osd.\$id/block.file
bluestore block create = true
bluestore block size = 4294967296
bluestore cache size = 134217728
bluestore cache autotune = false
osd memory target = 536870912
osd client watch timeout = 5
osd heartbeat grace = 6
osd heartbeat interval = 2
mon osd down out interval = 600
run dir = $dir/run
admin socket = $dir/run/\$name.asok
pid file = $dir/run/\$name.pid
log file = $dir/log/\$name.log
mon data = $dir/mon.\$id
osd data = $dir/osd.\$id
mgr data = $dir/mgr.\$id
ms bind ipv6 = false
client mount timeout = 30
EOF
  ceph-authtool --create-keyring "$dir/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null &&
    ceph-authtool --create-keyring "$dir/admin.keyring" --gen-key -n client.admin \
      --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' >/dev/null &&
    ceph-authtool "$dir/mon.keyring" --import-keyring "$dir/admin.keyring" >/dev/null &&
    monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$port,v1:127.0.0.1:$((port + 1))]" \
      "$dir/monmap" >/dev/null &&
    ceph-mon --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/mon.keyring" >/dev/null 2>&1 ||
    { _ceph_fail "mon mkfs"; return 1; }
  ceph-mon -i a || { _ceph_fail "ceph-mon did not start"; return 1; }
  # BlueStore opens its block file with O_DIRECT, which tmpfs supports only
  # from Linux 6.6: elsewhere, put each OSD's sparse file behind a loop device.
  local i uuid use_loop=0 loopdev
  if ! dd if=/dev/zero of="$dir/odirect-probe" bs=4k count=1 oflag=direct status=none 2>/dev/null; then
    use_loop=1
    modprobe loop 2>/dev/null || true
  fi
  rm -f "$dir/odirect-probe"
  for ((i = 0; i < osds; i++)); do
    uuid=$(cat /proc/sys/kernel/random/uuid)
    mkdir -p "$dir/osd.$i"
    if ((use_loop)); then
      truncate -s 4G "$dir/osd.$i.img"
      loopdev=$(losetup -f --show "$dir/osd.$i.img") || { _ceph_fail "losetup for osd.$i"; return 1; }
      echo "$loopdev" >>"$dir/loops"
      ln -s "$loopdev" "$dir/osd.$i/block.file"
    fi
    _ceph_cli osd create "$uuid" >/dev/null || { _ceph_fail "ceph osd create"; return 1; }
    ceph-osd -i "$i" --mkfs --mkkey --no-mon-config --osd-uuid "$uuid" \
      --keyring "$dir/osd.$i/keyring" >"$dir/log/osd.$i.mkfs.log" 2>&1 ||
      { _ceph_fail "ceph-osd --mkfs $i"; return 1; }
    _ceph_cli auth add "osd.$i" osd 'allow *' mon 'allow profile osd' mgr 'allow profile osd' \
      -i "$dir/osd.$i/keyring" >/dev/null 2>&1 || { _ceph_fail "ceph auth add osd.$i"; return 1; }
    ceph-osd -i "$i" --keyring "$dir/osd.$i/keyring" 2>>"$dir/log/osd.$i.stderr" || { _ceph_fail "ceph-osd $i did not start"; return 1; }
  done
  if ((mgr)); then
    mkdir -p "$dir/mgr.x"
    _ceph_cli auth get-or-create mgr.x mon 'allow profile mgr' osd 'allow *' mds 'allow *' \
      >"$dir/mgr.x/keyring" || { _ceph_fail "mgr keyring"; return 1; }
    ceph-mgr -i x --keyring "$dir/mgr.x/keyring" || { _ceph_fail "ceph-mgr did not start"; return 1; }
  fi
  local deadline=$((SECONDS + CEPH_FIXTURE_TIMEOUT)) up=0
  while :; do
    up=$(_ceph_cli osd stat -f json 2>/dev/null | sed -n 's/.*"num_up_osds":\([0-9]*\).*/\1/p')
    [[ ${up:-0} -ge $osds ]] && break
    ((SECONDS < deadline)) || { _ceph_fail "only ${up:-0} of $osds OSDs up after ${CEPH_FIXTURE_TIMEOUT}s"; return 1; }
    sleep 1
  done
  _ceph_cli osd pool create rbd 16 16 >/dev/null 2>&1 || { _ceph_fail "pool create"; return 1; }
  timeout 120 rbd pool init rbd || { _ceph_fail "rbd pool init"; return 1; }
  _ceph_log "cluster up in $((SECONDS - t0))s: $osds OSD(s), mon 127.0.0.1:$port, dir $dir"
}

# ceph_create_image NAME SIZE [rbd create options...]
ceph_create_image() {
  local name=$1 size=$2
  shift 2
  timeout 120 rbd create --size "$size" "$@" "rbd/$name"
}

ceph_osd_pid() { cat "$CEPH_DIR/run/osd.$1.pid" 2>/dev/null; }

ceph_kill_osd() {
  local pid
  pid=$(ceph_osd_pid "$1") || return 1
  kill -KILL "$pid"
}

ceph_stop() {
  [[ -n ${CEPH_DIR:-} && -d $CEPH_DIR ]] || return 0
  local f pid t0=$SECONDS
  for f in "$CEPH_DIR"/run/*.pid; do
    [[ -f $f ]] || continue
    pid=$(cat "$f")
    kill -KILL "$pid" 2>/dev/null || true
  done
  for f in "$CEPH_DIR"/run/*.pid; do
    [[ -f $f ]] || continue
    pid=$(cat "$f")
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < t0 + 20)); do sleep 0.1; done
  done
  if [[ -f $CEPH_DIR/loops ]]; then
    while read -r f; do losetup -d "$f" 2>/dev/null || true; done <"$CEPH_DIR/loops"
  fi
  rm -rf "$CEPH_DIR"
  _ceph_log "cluster torn down"
  unset CEPH_DIR
}

# --- RBD-backed dblock devices (cases and bench; need dblock-lib.sh for SERVE) ---

# need_rbd_server: dies unless dblock-serve has the rbd: backend (built when
# librbd-dev is installed, with shared tools).
need_rbd_server() {
  [[ -x $SERVE ]] || die "no $SERVE"
  ldd "$SERVE" | grep -q 'librbd\.so' ||
    die "$SERVE has no rbd: backend (built only when librbd-dev is installed)"
}

# start_rbd_server NAME IMAGE [dblock-serve options...]: serve /dev/NAME from
# rbd/IMAGE in the background (dblock-serve --backend rbd:rbd/IMAGE, log
# /tmp/rbd-NAME.log); sets RBD_PID. Waits (bounded) for its "serving" line,
# or "took over" for a takeover (--attach), where /dev/NAME exists all along.
start_rbd_server() {
  local name=$1 image=$2
  shift 2
  local logf=/tmp/rbd-$name.log
  : >"$logf"
  "$SERVE" "$name" --backend "rbd:rbd/$image" --ceph-conf "$CEPH_CONF" "$@" >>"$logf" 2>&1 &
  RBD_PID=$!
  local deadline=$((SECONDS + ${RBD_START_TIMEOUT:-180}))
  until grep -qE "(serving|took over) /dev/$name" "$logf"; do
    if ! kill -0 "$RBD_PID" 2>/dev/null; then
      cat "$logf" >&2
      _ceph_log "dblock-serve for $name exited early"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      cat "$logf" >&2
      _ceph_log "timed out waiting for dblock-serve to serve $name"
      return 1
    fi
    sleep 0.1
  done
  [[ -b /dev/$name ]] || { _ceph_log "/dev/$name is not a block device"; return 1; }
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  set -euo pipefail
  cmd=${1:-}
  shift || true
  case $cmd in
    start)
      ceph_start "$@"
      echo "CEPH_CONF=$CEPH_CONF"
      echo "CEPH_DIR=$CEPH_DIR"
      ;;
    stop)
      CEPH_DIR=${1:?usage: $0 stop DIR}
      ceph_stop
      ;;
    *)
      echo "usage: $0 start [--osds N] [--port P] [--mgr] [--dir DIR] | stop DIR" >&2
      exit 2
      ;;
  esac
fi
