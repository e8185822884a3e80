#!/bin/bash
# Runs in the QEMU guest (started by bench/run-bench.sh): fio on the reference
# block devices and on dblock, all in one boot, then the memory, scale and
# profile measurements. Raw results go to $DBLOCK_OUT/raw/; bench/report.py
# turns them into tables and a chart on the host.
#   usage: guest-bench.sh BINDIR KO RUNTIME RAMP QUICK(0|1) [ONLY-TARGETS]
# CPU placement (2 vCPUs, see shared notes/vm-testing.md):
#   1-job fio: fio (parent and job) pinned to CPU 1; every userspace server
#     thread (dblock server, nbdkit) pinned to CPU 0; blk-mq maps CPU 1 to the
#     last hardware queue, so with 2 queues fio submits to queue 1 only.
#   2-job fio: jobs split over CPUs 0 and 1; servers left to the scheduler
#     (affinity 0-1). Where each server thread ran is sampled after every job.
set -uo pipefail

BIN=$1 KO=$2 RUNTIME=$3 RAMP=$4 QUICK=$5 ONLY=${6:-}
RAW=$DBLOCK_OUT/raw
mkdir -p "$RAW/fio" "$RAW/threads" "$RAW/profile" "$RAW/mem"
SIZE_MB=256
FIO_CPU=1 SERVER_CPU=0
CTL=$BIN/dblockctl
SAMPLE=$BIN/dblock_sample_ramdisk
SERVE=$BIN/dblock-serve
SERVE_EXTRA=()

log() { echo "bench: [$(cut -d' ' -f1 /proc/uptime)s] $*" >&2; }
note() { echo "$*" >>"$RAW/notes.txt"; }

# name fio-options... (name = JOB id used in file names and the report)
JOBS=(
  "rr4k_qd1 --rw=randread --bs=4k --iodepth=1 --numjobs=1"
  "rr4k_qd32 --rw=randread --bs=4k --iodepth=32 --numjobs=1"
  "rw4k_qd32 --rw=randwrite --bs=4k --iodepth=32 --numjobs=1"
  "sr1m_qd8 --rw=read --bs=1M --iodepth=8 --numjobs=1"
  "sw1m_qd8 --rw=write --bs=1M --iodepth=8 --numjobs=1"
  "rr4k_qd32_2j --rw=randread --bs=4k --iodepth=32 --numjobs=2"
)

want() { [[ -z $ONLY ]] || [[ ",$ONLY," == *",$1,"* ]]; }

# Per-thread counters of process $1 (all its threads): tid comm vcsw nvcsw utime stime cpu migrations
# Bash builtins only: a server with a worker pool has dozens of threads, and a
# process started per thread costs seconds under TCG.
thread_snapshot() {
  local pid=$1 t st comm rest vcs nvcs mig k v
  local -a f
  for t in /proc/"$pid"/task/*; do
    read -r st <"$t/stat" 2>/dev/null || continue
    comm=${st#*(}; comm=${comm%%)*}; comm=${comm// /_}
    rest=${st##*) }
    read -r -a f <<<"$rest"
    vcs=0 nvcs=0 mig=0
    while read -r k v; do
      case $k in
        voluntary_ctxt_switches:) vcs=$v ;;
        nonvoluntary_ctxt_switches:) nvcs=$v ;;
      esac
    done <"$t/status"
    # "se.nr_migrations   :   N" (only with CONFIG_SCHED_DEBUG)
    while read -r k _ v; do
      [[ $k == se.nr_migrations ]] && { mig=$v; break; }
    done <"$t/sched" 2>/dev/null
    # after "pid (comm) ": f[0]=state ... utime=f[11] stime=f[12] processor=f[36]
    echo "${t##*/} $comm $vcs $nvcs ${f[11]} ${f[12]} ${f[36]} $mig"
  done
}

cpu_snapshot() { grep '^cpu[0-9]' /proc/stat; }

# run_fio TARGET DEV [SERVER_PID]: every job in JOBS on DEV.
declare -A SCHED_NOTED=()
run_fio() {
  local target=$1 dev=$2 spid=${3:-} job name opts out pin sched
  # The I/O scheduler changes per-request cost: record which one each device had.
  if [[ -z ${SCHED_NOTED[$target]:-} ]]; then
    sched=$(cat "/sys/block/$(basename "$(readlink -f "$dev")")/queue/scheduler" 2>/dev/null || echo "n/a (bio-based)")
    note "scheduler $target: $sched"
    SCHED_NOTED[$target]=1
  fi
  for job in "${JOBS[@]}"; do
    name=${job%% *} opts=${job#* }
    out=$RAW/fio/$target@$name${FIO_ROUND:+@r$FIO_ROUND}
    if [[ $opts == *numjobs=2* ]]; then
      pin=(taskset -c 0-1) ; opts+=" --cpus_allowed=0-1 --cpus_allowed_policy=split"
      [[ -n $spid ]] && taskset -a -p -c 0-1 "$spid" >/dev/null
    else
      pin=(taskset -c "$FIO_CPU") ; opts+=" --cpus_allowed=$FIO_CPU"
      [[ -n $spid ]] && taskset -a -p -c "${SERVER_PIN:-$SERVER_CPU}" "$spid" >/dev/null
    fi
    [[ -n $spid ]] && thread_snapshot "$spid" >"$out.threads-before"
    [[ -n ${PEER_PID:-} ]] && thread_snapshot "$PEER_PID" >"$out.peer-before"
    cpu_snapshot >"$out.cpu-before"
    # shellcheck disable=SC2086
    "${pin[@]}" fio --name="$name" --filename="$dev" --ioengine=libaio --direct=1 \
      --time_based --runtime="$RUNTIME" --ramp_time="$RAMP" --size=${SIZE_MB}M \
      --norandommap --randrepeat=0 --group_reporting --output-format=json \
      $opts >"$out.json" 2>"$out.err"
    local rc=$?
    cpu_snapshot >"$out.cpu-after"
    [[ -n $spid ]] && thread_snapshot "$spid" >"$out.threads-after"
    [[ -n ${PEER_PID:-} ]] && thread_snapshot "$PEER_PID" >"$out.peer-after"
    if ((rc)); then
      log "$target $name: fio failed ($rc): $(head -c 300 "$out.err")"
    else
      log "$target $name${FIO_ROUND:+ (round $FIO_ROUND)}: $(sed -n 's/.*"iops" : \([0-9.]*\),.*/\1/p' "$out.json" | head -2 | tr '\n' ' ')IOPS(r w)"
    fi
  done
}

prefill() { dd if=/dev/zero of="$1" bs=1M count=$SIZE_MB oflag=direct status=none || log "prefill $1 failed"; }

wait_blk() {
  local dev=$1 pid=${2:-} deadline=$((SECONDS + 30))
  until [[ -b $dev ]] && blockdev --getsize64 "$dev" >/dev/null 2>&1 && (($(blockdev --getsize64 "$dev") > 0)); do
    [[ -z $pid ]] || kill -0 "$pid" 2>/dev/null || return 1
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# start_dblock NAME BACKEND QUEUES: sets DPID (server pid).
start_dblock() {
  local name=$1 backend=$2 queues=$3
  case $backend in
    ram) "$SAMPLE" --name "$name" --size ${SIZE_MB}M --queues "$queues" --depth 64 --max-io 1M \
           >"$RAW/$name.server.log" 2>&1 & ;;
    null) "$SERVE" "$name" --backend null --size ${SIZE_MB}M --queues "$queues" --depth 64 --max-io 1M \
           >"$RAW/$name.server.log" 2>&1 & ;;
    file) truncate -s ${SIZE_MB}M /tmp/dblock-file.img
          "$SERVE" "$name" --backend file:/tmp/dblock-file.img --size ${SIZE_MB}M --queues "$queues" \
           --depth 64 --max-io 1M >"$RAW/$name.server.log" 2>&1 & ;;
    # An NBD URI: as many connections as queues.
    nbd*://*) "$SERVE" "$name" --backend "$backend" --queues "$queues" --connections "$queues" \
           --depth 64 --max-io 1M >"$RAW/$name.server.log" 2>&1 & ;;
    # file:PATH: an existing file or block device, with extra dblock-serve options in SERVE_EXTRA.
    file:*) "$SERVE" "$name" --backend "$backend" --size ${SIZE_MB}M --queues "$queues" \
           --depth 64 --max-io 1M "${SERVE_EXTRA[@]}" >"$RAW/$name.server.log" 2>&1 & ;;
  esac
  DPID=$!
  if ! wait_blk "/dev/$name" "$DPID"; then
    log "dblock $name ($backend) did not come up: $(tail -3 "$RAW/$name.server.log")"
    kill "$DPID" 2>/dev/null; "$CTL" destroy "$name" >/dev/null 2>&1
    return 1
  fi
}

stop_dblock() {
  local name=$1 pid=$2 i
  "$CTL" destroy "$name" >/dev/null 2>&1 || log "destroy $name failed"
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && { log "server of $name still running, killing"; kill -9 "$pid"; }
  wait "$pid" 2>/dev/null
  rm -f /tmp/dblock-file.img
}

serve_available() { [[ -x $SERVE ]]; }

# take_turns FN TARGET...: rounds (DBLOCK_BENCH_ROUNDS, run-bench's --rounds:
# 3 by default, 1 with --quick) in which, job by job, "FN TARGET" measures
# each target in turn with JOBS holding that one job and FIO_ROUND the round:
# the report takes each one's median, since one TCG sample drifts by tens of
# percent with the host's load.
take_turns() {
  local fn=$1 rounds=${DBLOCK_BENCH_ROUNDS:-3} job t saved=("${JOBS[@]}")
  shift
  ((QUICK)) && rounds=1
  for ((FIO_ROUND = 1; FIO_ROUND <= rounds; FIO_ROUND++)); do
    for job in "${saved[@]}"; do
      JOBS=("$job")
      for t in "$@"; do "$fn" "$t"; done
    done
  done
  FIO_ROUND=""
  JOBS=("${saved[@]}")
}

# ---------------------------------------------------------------- setup
log "kernel $(uname -r), $(nproc) vCPUs, $(awk '/MemTotal/{print $2/1024 " MiB"}' /proc/meminfo)"
{
  echo "kernel=$(uname -r)"
  echo "vcpus=$(nproc)"
  echo "mem_mib=$(awk '/MemTotal/{print int($2/1024)}' /proc/meminfo)"
  echo "clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
  echo "runtime=$RUNTIME ramp=$RAMP quick=$QUICK"
  echo "fio=$(fio --version)"
  echo "dblock_serve=$(serve_available && echo yes || echo no)"
} >"$RAW/guest.env"
# shellcheck disable=SC2086 # parameters, one word each
insmod "$KO" ${DBLOCK_BENCH_MODPARAMS:-} || { log "insmod $KO ${DBLOCK_BENCH_MODPARAMS:-} failed"; exit 1; }
note "dblock.ko parameters: ${DBLOCK_BENCH_MODPARAMS:-defaults} ($(shopt -s nullglob; for p in /sys/module/dblock/parameters/*; do echo -n "${p##*/}=$(<"$p") "; done))"
for _ in $(seq 50); do [[ -c /dev/dblockctl ]] && break; sleep 0.1; done

# Sanity: a module and binaries built from a tree in the middle of an edit
# may not agree. If a small RAM device cannot write and read back, skip dblock.
DBLOCK_OK=1
if start_dblock dbsanity ram 1; then
  head -c 1M /dev/urandom >/tmp/sanity.bin
  if ! dd if=/tmp/sanity.bin of=/dev/dbsanity bs=1M oflag=direct status=none ||
     ! cmp <(dd if=/dev/dbsanity bs=1M count=1 iflag=direct status=none) /tmp/sanity.bin; then
    DBLOCK_OK=0
  fi
  stop_dblock dbsanity "$DPID"
else
  DBLOCK_OK=0
fi
if ((!DBLOCK_OK)); then
  note "dblock sanity check FAILED (write+read back of 1 MiB): every dblock measurement skipped; check that dblock.ko and the binaries come from one tree state"
  log "dblock sanity check failed: skipping every dblock measurement"
  dmesg | tail -20 >"$RAW/sanity-dmesg.txt"
fi
want() {
  [[ -z $ONLY || ",$ONLY," == *",$1,"* ]] &&
    { ((DBLOCK_OK)) || [[ $1 == brd || $1 == kublk-* || $1 == null_blk || $1 == loop || $1 == nbd || $1 == nbd-k* || $1 == null_blk-lat || $1 == loop-dio-lat ]]; }
}

# ---------------------------------------------------------------- references
if want brd; then
  modprobe brd rd_nr=1 rd_size=$((SIZE_MB * 1024)) max_part=0
  prefill /dev/ram0
  run_fio brd /dev/ram0
  rmmod brd
fi

if want null_blk; then
  # irqmode=0: completes in the submitter's context (the fastest kernel path).
  modprobe null_blk nr_devices=1 queue_mode=2 irqmode=0 submit_queues=2 hw_queue_depth=64 gb=1 bs=4096
  wait_blk /dev/nullb0
  run_fio null_blk /dev/nullb0
  rmmod null_blk
fi

if want loop; then
  truncate -s ${SIZE_MB}M /tmp/loop.img
  modprobe loop
  dev=$(losetup --find --show /tmp/loop.img)
  prefill "$dev"
  run_fio loop "$dev"
  losetup -d "$dev"; rm -f /tmp/loop.img
fi

if want nbd; then
  modprobe nbd nbds_max=1
  taskset -c $SERVER_CPU nbdkit -U /tmp/nbd.sock -P /tmp/nbdkit.pid memory ${SIZE_MB}M
  for _ in $(seq 50); do [[ -S /tmp/nbd.sock && -s /tmp/nbdkit.pid ]] && break; sleep 0.1; done
  npid=$(cat /tmp/nbdkit.pid)
  if nbd-client -unix /tmp/nbd.sock /dev/nbd0 -b 4096 >"$RAW/nbd-client.log" 2>&1 && wait_blk /dev/nbd0; then
    prefill /dev/nbd0
    run_fio nbd /dev/nbd0 "$npid"
    nbd-client -d /dev/nbd0 >/dev/null 2>&1
  else
    log "nbd-client failed: $(cat "$RAW/nbd-client.log")"
  fi
  kill "$npid"; sleep 0.5; rmmod nbd
fi

# ---------------------------------------------------------------- dblock
for backend in null ram file; do
  for q in 1 2; do
    target=dblock-$backend-${q}q
    want "$target" || continue
    if [[ $backend != ram ]] && ! serve_available; then
      note "$target: skipped: $SERVE does not exist yet"
      log "$target skipped (no dblock-serve)"
      continue
    fi
    name=db${backend}${q}
    start_dblock "$name" "$backend" "$q" || { note "$target: server failed to start"; continue; }
    [[ $backend == null ]] || prefill "/dev/$name"
    run_fio "$target" "/dev/$name" "$DPID"
    cp "/sys/block/$name/mq/0/cpu_list" "$RAW/threads/$target.mq0" 2>/dev/null
    [[ $q == 2 ]] && cp "/sys/block/$name/mq/1/cpu_list" "$RAW/threads/$target.mq1" 2>/dev/null
    stop_dblock "$name" "$DPID"
  done
done

# ---------------------------------------------------------------- ublk
# The same null and RAM servers over the kernel's ublk (dblock-serve
# --transport ublk), for the ratio that says what dblock.ko buys; and beside
# them the kernel's own ublk selftest server, kublk (bench/build-kublk.sh, from
# Debian's linux-source), a ublk server no one here wrote: its null target
# against dblock-serve's null backend, and its loop target against
# dblock-serve's file backend on the same backing store. kublk's loop opens
# its file with O_DIRECT, which tmpfs refuses: both serve a 256 MiB brd disk
# (/dev/ram0, no file system) with O_DIRECT (dblock-serve --direct-io, io_uring).
# Every server gets 1 MiB max I/O (kublk's fixed UBLK_IO_MAX_BYTES) and depth 64,
# as many queues as its name says, and no I/O scheduler. All are up at once and
# take turns job by job for several rounds (medians), like the NBD clients;
# their threads are pinned by run_fio alike (CPU 0 under 1-job fio, both CPUs under 2).
# ko-{null,ram}-Nq are the same dblock-serve over dblock.ko (--transport dblock),
# in the same rounds: the transports' ratio from one stretch of time.
KUBLK=$BIN/kublk
ublk_targets=()
for t in ko-null-1q ublk-null-1q kublk-null-1q ko-null-2q ublk-null-2q kublk-null-2q \
  ko-ram-1q ublk-ram-1q ko-ram-2q ublk-ram-2q ublk-file-1q kublk-loop-1q; do
  want "$t" || continue
  if [[ $t == kublk-* && ! -x $KUBLK ]]; then
    note "$t: skipped: no kublk binary (bench/run-bench.sh builds it for --kernel newest)"
    continue
  fi
  ublk_targets+=("$t")
done
if ((${#ublk_targets[@]})) && ! modprobe ublk_drv 2>/dev/null; then
  note "ko-*, ublk-*, kublk-*: skipped: no ublk_drv in $(uname -r)"
  ublk_targets=()
fi
if ((${#ublk_targets[@]})); then
  declare -A udev=() upid=()
  ubrd=0
  if [[ " ${ublk_targets[*]} " == *" ublk-file-1q "* || " ${ublk_targets[*]} " == *" kublk-loop-1q "* ]]; then
    modprobe brd rd_nr=1 rd_size=$((SIZE_MB * 1024)) max_part=0 && ubrd=1
    prefill /dev/ram0
  fi
  [[ -x $KUBLK ]] && note "kublk: $(cat "$BIN/kublk.version" 2>/dev/null), static; add -t null|loop -q N -d 64 --foreground (loop: /dev/ram0, O_DIRECT)"
  kid=20
  for t in "${ublk_targets[@]}"; do
    IFS=- read -r kind backend q <<<"$t"
    q=${q%q}
    case $kind in
      ublk | ko)
        name=ub$backend$q transport=ublk
        [[ $kind == ko ]] && name=ko$backend$q transport=dblock
        dev=/dev/$name
        args=(--backend "$backend")
        if [[ $backend == file ]]; then
          ((ubrd)) || { note "$t: skipped: no brd disk"; continue; }
          args=(--backend file:/dev/ram0 --direct-io)
        fi
        "$SERVE" "$name" --transport "$transport" "${args[@]}" --size ${SIZE_MB}M --queues "$q" --depth 64 \
          --max-io 1M >"$RAW/$name.server.log" 2>&1 & ;;
      kublk)
        name=kublk$kid dev=/dev/ublkb$kid
        args=()
        if [[ $backend == loop ]]; then
          ((ubrd)) || { note "$t: skipped: no brd disk"; continue; }
          args=(/dev/ram0)
        fi
        "$KUBLK" add -t "$backend" -q "$q" -d 64 -n "$kid" --foreground "${args[@]}" >"$RAW/$name.server.log" 2>&1 &
        kid=$((kid + 1)) ;;
    esac
    pid=$!
    if ! wait_blk "$dev" "$pid"; then
      note "$t: server failed to start: $(tail -1 "$RAW/$name.server.log")"
      kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
      continue
    fi
    udev[$t]=$dev upid[$t]=$pid
    # Like for like: dblock.ko's disks start without an I/O scheduler
    # (BLK_MQ_F_NO_SCHED_BY_DEFAULT); the kernel gives a single-queue ublk disk
    # mq-deadline, which alone cost it 3x at 4k QD32 (7.2 guest).
    disk=$(basename "$(readlink -f "$dev")")
    echo none >"/sys/block/$disk/queue/scheduler" || note "$t: could not set $disk's scheduler to none"
    [[ $t == ublk-ram-* || $t == ko-ram-* ]] && prefill "$dev"
  done
  ublk_turn() { [[ -z ${udev[$1]:-} ]] || run_fio "$1" "${udev[$1]}" "${upid[$1]}"; }
  take_turns ublk_turn "${ublk_targets[@]}"
  for t in "${ublk_targets[@]}"; do
    [[ -n ${udev[$t]:-} ]] || continue
    case $t in
      ublk-* | ko-*) stop_dblock "${udev[$t]#/dev/}" "${upid[$t]}" ;;
      kublk-*)
        id=${udev[$t]#/dev/ublkb}
        "$KUBLK" del -n "$id" >>"$RAW/kublk$id.server.log" 2>&1 || log "kublk del -n $id failed"
        for ((i = 0; i < 100; i++)); do kill -0 "${upid[$t]}" 2>/dev/null || break; sleep 0.1; done
        kill -0 "${upid[$t]}" 2>/dev/null && { log "kublk $id still running, killing"; kill -9 "${upid[$t]}"; }
        wait "${upid[$t]}" 2>/dev/null ;;
    esac
  done
  ((ubrd)) && rmmod brd
  rmmod ublk_drv || log "rmmod ublk_drv failed"
fi

# Placement sensitivity: the same RAM device with its server pinned to fio's CPU.
if want dblock-ram-1q-coloc; then
  if start_dblock dbcol ram 1; then
    prefill /dev/dbcol
    saved=("${JOBS[@]}")
    JOBS=("${saved[0]}" "${saved[1]}")
    SERVER_PIN=$FIO_CPU run_fio dblock-ram-1q-coloc /dev/dbcol "$DPID"
    JOBS=("${saved[@]}")
    stop_dblock dbcol "$DPID"
  fi
fi

# ---------------------------------------------------------------- latency device
# A null_blk device with 100 us (DBLOCK_BENCH_LAT_NSEC) timer completions (irqmode=2) that keeps its
# data (memory_backed=1): queue depth matters on it as on real storage. On it,
# side by side: the device itself (null_blk-lat), loop with direct I/O
# (loop-dio-lat) and dblock-serve's file backend with O_DIRECT
# (dblock-file-dio-lat), both directly on the block device. Made through
# configfs, so it does not clash with the irqmode=0 null_blk reference. The
# three take turns job by job (host load drifts); only the jobs where depth
# matters run.
LAT_JOBS=" rr4k_qd32 rw4k_qd32 sr1m_qd8 sw1m_qd8 "
lat_targets=()
for t in null_blk-lat loop-dio-lat dblock-file-dio-lat dblock-file-uring-lat dblock-file-thr-lat dblock-null-ceil; do
  want "$t" && lat_targets+=("$t")
done
if ((${#lat_targets[@]})); then
  NBCFG=/sys/kernel/config/nullb/nullb_lat lat_mod=0 lat_ok=1 nbdev="" ldev="" lpid="" upid="" tpid="" cpid=""
  LATENV=$RAW/lat.env
  if [[ ! -d /sys/module/null_blk ]]; then
    modprobe null_blk nr_devices=0 && lat_mod=1
  fi
  if [[ -d ${NBCFG%/*} ]] && mkdir "$NBCFG"; then
    # Settings first, power last; size in MB.
    for kv in size=$SIZE_MB blocksize=4096 memory_backed=1 irqmode=2 completion_nsec="${DBLOCK_BENCH_LAT_NSEC:-100000}" \
              queue_mode=2 submit_queues=2 hw_queue_depth=64 power=1; do
      echo "${kv#*=}" >"$NBCFG/${kv%%=*}" || { log "null_blk-lat: setting ${kv} failed"; lat_ok=0; break; }
    done
    if ((lat_ok)); then
      # 6.12 names the disk after the configfs directory; older kernels nullb<index>.
      nbdev=/dev/nullb_lat
      [[ -b $nbdev ]] || nbdev=/dev/nullb$(cat "$NBCFG/index")
      wait_blk "$nbdev" || { log "null_blk-lat: $nbdev did not appear"; lat_ok=0; }
    fi
    for a in size blocksize memory_backed irqmode completion_nsec queue_mode submit_queues hw_queue_depth; do
      echo "nullb_$a=$(cat "$NBCFG/$a" 2>/dev/null)"
    done >"$LATENV"
    echo "nullb_dev=$nbdev" >>"$LATENV"
  else
    log "null_blk-lat: no configfs for null_blk (${NBCFG%/*})"; lat_ok=0
  fi
  if ((!lat_ok)); then
    note "latency device: null_blk (irqmode=2, memory_backed) could not be made: null_blk-lat, loop-dio-lat, dblock-file-dio-lat skipped"
  else
    prefill "$nbdev"
    if [[ " ${lat_targets[*]} " == *" loop-dio-lat "* ]]; then
      modprobe loop
      if ldev=$(losetup --find --show --direct-io=on "$nbdev" 2>"$RAW/loop-dio-lat.err"); then
        ldio=$(cat "/sys/block/${ldev#/dev/}/loop/dio" 2>/dev/null)
        { echo "loop_dev=$ldev"; echo "loop_dio=$ldio";
          echo "loop_lbs=$(cat "/sys/block/${ldev#/dev/}/queue/logical_block_size")"; } >>"$LATENV"
        [[ $ldio == 1 ]] || note "loop-dio-lat: $ldev does NOT do direct I/O (loop/dio=$ldio)"
      else
        log "loop-dio-lat: losetup failed: $(cat "$RAW/loop-dio-lat.err")"; ldev=""
        note "loop-dio-lat: losetup --direct-io=on failed"
      fi
    fi
    if [[ " ${lat_targets[*]} " == *" dblock-file-dio-lat "* ]]; then
      if ! serve_available; then
        note "dblock-file-dio-lat: skipped: $SERVE does not exist yet"
      else
        SERVE_EXTRA=(--direct-io); echo "dblock_direct_io=yes" >>"$LATENV"
        echo "dblock_args=--backend file:$nbdev --size ${SIZE_MB}M --queues 1 --depth 64 --max-io 1M ${SERVE_EXTRA[*]}" >>"$LATENV"
        if start_dblock dbfiledio "file:$nbdev" 1; then
          lpid=$DPID
          # The data must reach the device: 1 MiB written through dblock, read back from null_blk.
          head -c 1M /dev/urandom >/tmp/lat-check.bin
          if dd if=/tmp/lat-check.bin of=/dev/dbfiledio bs=1M seek=3 oflag=direct status=none &&
             cmp <(dd if="$nbdev" bs=1M skip=3 count=1 iflag=direct status=none) /tmp/lat-check.bin; then
            echo "dblock_data_check=ok" >>"$LATENV"
          else
            echo "dblock_data_check=FAILED" >>"$LATENV"
            note "dblock-file-dio-lat: 1 MiB written through dblock did not read back from $nbdev"
          fi
          rm -f /tmp/lat-check.bin
          # --aio auto on dblock.ko: the module does the file's reads and writes.
          if grep -q "reads and writes by dblock.ko" "$RAW/dbfiledio.server.log" 2>/dev/null; then
            echo "dblock_file_io=kernel" >>"$LATENV"
          else
            echo "dblock_file_io=server" >>"$LATENV"
          fi
        else
          note "dblock-file-dio-lat: server failed to start"
        fi
        SERVE_EXTRA=()
      fi
    fi
    # The same file on io_uring in the server (--aio io_uring): what the kernel's I/O gains.
    if [[ " ${lat_targets[*]} " == *" dblock-file-uring-lat "* ]] && serve_available; then
      SERVE_EXTRA=(--direct-io --aio io_uring)
      start_dblock dbfileuring "file:$nbdev" 1 && upid=$DPID
      SERVE_EXTRA=()
      [[ -n $upid ]] || note "dblock-file-uring-lat: server failed to start"
    fi
    # The same file backend on worker threads (--aio threads): what io_uring gains.
    if [[ " ${lat_targets[*]} " == *" dblock-file-thr-lat "* ]] && serve_available; then
      SERVE_EXTRA=(--direct-io --aio threads)
      start_dblock dbfilethr "file:$nbdev" 1 && tpid=$DPID
      SERVE_EXTRA=()
      [[ -n $tpid ]] || note "dblock-file-thr-lat: server failed to start"
    fi
    # The null backend (answers at once, no I/O) in the same shape: the most
    # any dblock backend can reach here, the transport's ceiling.
    if [[ " ${lat_targets[*]} " == *" dblock-null-ceil "* ]] && serve_available; then
      start_dblock dbnullceil null 1 && cpid=$DPID
      [[ -n $cpid ]] || note "dblock-null-ceil: server failed to start"
    fi
    for p in $upid $tpid $cpid; do taskset -a -p -c $SERVER_CPU "$p" >/dev/null; done
    # The prefill went to null_blk directly: warm loop and dblock up alike
    # (1 s, unmeasured) so that neither pays for its first requests in a measured job.
    [[ -n $lpid ]] && taskset -a -p -c $SERVER_CPU "$lpid" >/dev/null
    for dev in ${ldev:+"$ldev"} ${lpid:+/dev/dbfiledio} ${upid:+/dev/dbfileuring} ${tpid:+/dev/dbfilethr} ${cpid:+/dev/dbnullceil}; do
      taskset -c $FIO_CPU fio --name=warmup --filename="$dev" --ioengine=libaio --direct=1 --time_based \
        --runtime=1 --rw=randread --bs=4k --iodepth=32 --size=${SIZE_MB}M --norandommap --randrepeat=0 \
        --output-format=terse >/dev/null 2>&1 || log "warm-up of $dev failed"
    done
    # Each target in turn per job (take_turns), on the jobs where depth
    # matters only (LAT_JOBS).
    lat_turn() {
      [[ $LAT_JOBS == *" ${JOBS[0]%% *} "* ]] || return 0
      case $1 in
        null_blk-lat) run_fio "$1" "$nbdev" ;;
        loop-dio-lat) [[ -z $ldev ]] || run_fio "$1" "$ldev" ;;
        dblock-file-dio-lat) [[ -z $lpid ]] || run_fio "$1" /dev/dbfiledio "$lpid" ;;
        dblock-file-uring-lat) [[ -z $upid ]] || run_fio "$1" /dev/dbfileuring "$upid" ;;
        dblock-file-thr-lat) [[ -z $tpid ]] || run_fio "$1" /dev/dbfilethr "$tpid" ;;
        dblock-null-ceil) [[ -z $cpid ]] || run_fio "$1" /dev/dbnullceil "$cpid" ;;
      esac
    }
    take_turns lat_turn "${lat_targets[@]}"
    [[ -n $lpid ]] && stop_dblock dbfiledio "$lpid"
    [[ -n $upid ]] && stop_dblock dbfileuring "$upid"
    [[ -n $tpid ]] && stop_dblock dbfilethr "$tpid"
    [[ -n $cpid ]] && stop_dblock dbnullceil "$cpid"
    [[ -n $ldev ]] && losetup -d "$ldev"
  fi
  if [[ -d $NBCFG ]]; then
    echo 0 >"$NBCFG/power" 2>/dev/null
    rmdir "$NBCFG" || log "null_blk-lat: rmdir $NBCFG failed"
  fi
  ((lat_mod)) && { rmmod null_blk || log "rmmod null_blk failed"; }
fi

# ---------------------------------------------------------------- NBD clients
# One nbdkit memory server (unix socket, pinned to CPU 0), four clients of it
# side by side: the kernel's nbd client with 1 and 2 connections (nbd-k1,
# nbd-k2) and dblock-serve's NBD backend with 1 queue/1 connection and 2
# queues/2 connections (dblock-nbd-1q, -2q). fio is pinned as everywhere; the
# clients are not: dblock-serve may run on both CPUs, as the kernel client's
# work does. They take turns job by job for
# several rounds; nbdkit's CPU time is sampled around every job (PEER_PID),
# to show when the server itself is the limit.
nbd_targets=()
for t in nbd-k1 nbd-k2 dblock-nbd-1q dblock-nbd-2q; do
  want "$t" && nbd_targets+=("$t")
done
if ((${#nbd_targets[@]})); then
  modprobe nbd nbds_max=2
  rm -f /tmp/nbdb.sock /tmp/nbdb.pid
  taskset -c $SERVER_CPU nbdkit -U /tmp/nbdb.sock -P /tmp/nbdb.pid memory ${SIZE_MB}M
  for _ in $(seq 50); do [[ -S /tmp/nbdb.sock && -s /tmp/nbdb.pid ]] && break; sleep 0.1; done
  PEER_PID=$(cat /tmp/nbdb.pid)
  uri="nbd+unix:///?socket=/tmp/nbdb.sock"
  declare -A ndev=() npid=()
  for t in "${nbd_targets[@]}"; do
    case $t in
      nbd-k1 | nbd-k2)
        d=/dev/nbd$((${t#nbd-k} - 1))
        if nbd-client -unix /tmp/nbdb.sock "$d" -b 4096 -C "${t#nbd-k}" >>"$RAW/nbd-client.log" 2>&1 &&
           wait_blk "$d"; then
          ndev[$t]=$d npid[$t]=""
        else
          note "$t: nbd-client failed: $(tail -2 "$RAW/nbd-client.log")"
        fi ;;
      dblock-nbd-*)
        q=${t#dblock-nbd-}; q=${q%q}
        if start_dblock "dbnbd$q" "$uri" "$q"; then
          ndev[$t]=/dev/dbnbd$q npid[$t]=$DPID
          grep -o "serving.*" "$RAW/dbnbd$q.server.log" | head -1 >>"$RAW/notes.txt"
        else
          note "$t: server failed to start"
        fi ;;
    esac
  done
  prefill "$(for t in "${nbd_targets[@]}"; do [[ -n ${ndev[$t]:-} ]] && echo "${ndev[$t]}" && break; done)"
  # dblock's client process may run on either CPU, as the kernel client's
  # work does (fio's context and unbound kworkers).
  nbd_turn() { [[ -z ${ndev[$1]:-} ]] || SERVER_PIN=0-1 run_fio "$1" "${ndev[$1]}" "${npid[$1]}"; }
  take_turns nbd_turn "${nbd_targets[@]}"
  PEER_PID=""
  for t in "${nbd_targets[@]}"; do
    [[ -n ${ndev[$t]:-} ]] || continue
    case $t in
      nbd-k*) nbd-client -d "${ndev[$t]}" >/dev/null 2>&1 ;;
      *) stop_dblock "${ndev[$t]#/dev/}" "${npid[$t]}" ;;
    esac
  done
  kill "$(cat /tmp/nbdb.pid)"; sleep 0.5; rmmod nbd
fi

# ---------------------------------------------------------------- interleaved
# Host load drifts during a long run, which skews ratios of runs minutes
# apart. Here the references and dblock live side by side and take turns,
# job by job, for several rounds: the report gives the median ratio per job.
if want interleaved; then
  IROUNDS=3 IRUN=$(((RUNTIME + 1) / 2))
  ((IRUN < 2)) && IRUN=2
  mkdir -p "$RAW/inter"
  modprobe brd rd_nr=1 rd_size=$((SIZE_MB * 1024)) max_part=0
  modprobe null_blk nr_devices=1 queue_mode=2 irqmode=0 submit_queues=2 hw_queue_depth=64 gb=1 bs=4096
  prefill /dev/ram0
  ok=1
  start_dblock dbiram ram 1 && ram_pid=$DPID || ok=0
  if serve_available; then start_dblock dbinull null 1 && null_pid=$DPID || ok=0; fi
  [[ -n ${ram_pid:-} ]] && prefill /dev/dbiram
  for pid in ${ram_pid:-} ${null_pid:-}; do taskset -a -p -c $SERVER_CPU "$pid" >/dev/null; done
  ((ok)) || log "interleaved: a dblock server did not start"
  for ((r = 1; r <= IROUNDS; r++)); do
    for spec in "rr4k_qd1 --rw=randread --bs=4k --iodepth=1" "rr4k_qd32 --rw=randread --bs=4k --iodepth=32" \
                "rw4k_qd32 --rw=randwrite --bs=4k --iodepth=32" "sr1m_qd8 --rw=read --bs=1M --iodepth=8"; do
      name=${spec%% *} opts=${spec#* }
      for td in brd:/dev/ram0 null_blk:/dev/nullb0 dblock-ram-1q:/dev/dbiram dblock-null-1q:/dev/dbinull; do
        [[ -b ${td#*:} ]] || continue
        # shellcheck disable=SC2086
        taskset -c $FIO_CPU fio --name="$name" --filename="${td#*:}" --ioengine=libaio --direct=1 \
          --time_based --runtime="$IRUN" --ramp_time=1 --size=${SIZE_MB}M --norandommap --randrepeat=0 \
          --cpus_allowed=$FIO_CPU --output-format=json $opts >"$RAW/inter/r$r@${td%%:*}@$name.json" 2>/dev/null
      done
    done
    log "interleaved round $r done"
  done
  [[ -n ${ram_pid:-} ]] && stop_dblock dbiram "$ram_pid"
  [[ -n ${null_pid:-} ]] && stop_dblock dbinull "$null_pid"
  rmmod brd null_blk
fi

# ---------------------------------------------------------------- profile
# dblock RAM, 1 queue, 4k randread QD32 and QD1: syscalls, wakeups, context
# switches per I/O (perf stat, system-wide) and where CPU time goes (perf record).
if want profile; then
  if start_dblock dbprof ram 1; then
    prefill /dev/dbprof
    taskset -a -p -c $SERVER_CPU "$DPID" >/dev/null
    for qd in 32 1; do
      p=$RAW/profile/qd$qd
      taskset -c $FIO_CPU fio --name=prof --filename=/dev/dbprof --ioengine=libaio --direct=1 \
        --time_based --runtime=10 --ramp_time=1 --rw=randread --bs=4k --iodepth=$qd \
        --size=${SIZE_MB}M --norandommap --randrepeat=0 --output-format=json >"$p.fio.json" 2>"$p.fio.err" &
      fpid=$!
      sleep 2
      thread_snapshot "$DPID" >"$p.threads-before"
      awk '{print $1, $5; exit}' /sys/block/dbprof/stat >"$p.diskstat-before"
      perf stat -a -x, -o "$p.perfstat" \
        -e 'syscalls:sys_enter_ioctl,syscalls:sys_enter_io_submit,syscalls:sys_enter_io_getevents,raw_syscalls:sys_enter,sched:sched_wakeup,sched:sched_switch,context-switches,cpu-migrations,cpu-clock' \
        -- sleep 3 2>"$p.perfstat.err"
      thread_snapshot "$DPID" >"$p.threads-after"
      awk '{print $1, $5; exit}' /sys/block/dbprof/stat >"$p.diskstat-after"
      perf record -a -g -F 499 -e cpu-clock -o /tmp/perf-$qd.data -- sleep 3 >"$p.record.err" 2>&1
      wait "$fpid"
      perf report -i /tmp/perf-$qd.data --no-children --sort sym --stdio -g none --percent-limit 0.7 \
        >"$p.report-sym" 2>/dev/null
      perf report -i /tmp/perf-$qd.data --no-children --sort comm,dso --stdio -g none --percent-limit 0.5 \
        >"$p.report-comm" 2>/dev/null
      perf report -i /tmp/perf-$qd.data --no-children --sort comm,sym --stdio -g none --percent-limit 0.4 \
        >"$p.report-commsym" 2>/dev/null
      rm -f /tmp/perf-$qd.data
      log "profile qd$qd done"
    done
    # I/O counts over the perf stat window come from fio's totals (see report.py).
    stop_dblock dbprof "$DPID"
  fi
fi

# ---------------------------------------------------------------- memory
meminfo() { grep -E '^(MemFree|Slab|SReclaimable|SUnreclaim|VmallocUsed|Percpu|KernelStack|PageTables):' /proc/meminfo; }
if want mem; then
  sync; echo 3 >/proc/sys/vm/drop_caches
  meminfo >"$RAW/mem/idle-before"
  grep -E '^(kmalloc|dblock|bio|request|blkdev)' /proc/slabinfo >"$RAW/mem/slabinfo-before" 2>/dev/null
  "$SAMPLE" --name dbmem --size 1G --queues 1 --depth 64 --max-io 256K >"$RAW/dbmem.log" 2>&1 &
  mpid=$!
  if wait_blk /dev/dbmem "$mpid"; then
    sleep 1
    meminfo >"$RAW/mem/idle-after"
    grep -E '^(kmalloc|dblock|bio|request|blkdev)' /proc/slabinfo >"$RAW/mem/slabinfo-after" 2>/dev/null
    grep -E '^(VmRSS|RssAnon|RssFile|RssShmem|VmSize|Threads):' /proc/$mpid/status >"$RAW/mem/server-empty"
    dd if=/dev/urandom of=/dev/dbmem bs=1M count=256 oflag=direct status=none
    sleep 0.5
    grep -E '^(VmRSS|RssAnon|RssFile|RssShmem|VmSize|Threads):' /proc/$mpid/status >"$RAW/mem/server-256m"
    "$CTL" info dbmem --json >"$RAW/mem/info.json" 2>/dev/null
    stop_dblock dbmem "$mpid"
    sleep 0.5
    meminfo >"$RAW/mem/idle-destroyed"
  else
    log "memory: device did not come up"
  fi
fi

# ---------------------------------------------------------------- scale
# N devices (small: 16 MiB, 1 queue, depth 4, 64 KiB max I/O) created, served
# (one 4k read each), destroyed; slab, vmalloc and module use count must return.
if want scale; then
  N=256 ROUNDS=2
  ((QUICK)) && ROUNDS=1
  sync; echo 3 >/proc/sys/vm/drop_caches
  { meminfo; echo "refcnt: $(cat /sys/module/dblock/refcnt)"; echo "devices: $("$CTL" list --json | grep -c '"name"')"; } >"$RAW/mem/scale-start"
  for ((r = 1; r <= ROUNDS; r++)); do
    t0=$SECONDS pids=()
    for ((i = 0; i < N; i++)); do
      "$SAMPLE" --name "sc$i" --size 16M --queues 1 --depth 4 --max-io 64K >/dev/null 2>"/tmp/sc$i.err" &
      pids+=($!)
    done
    up=0
    for ((i = 0; i < N; i++)); do wait_blk "/dev/sc$i" "${pids[i]}" && up=$((up + 1)); done
    t_up=$((SECONDS - t0))
    { meminfo; echo "refcnt: $(cat /sys/module/dblock/refcnt)"; echo "devices: $("$CTL" list --json | grep -c '"name"')"; echo "up: $up"; } >"$RAW/mem/scale-r$r-peak"
    ok=0
    for ((i = 0; i < N; i++)); do
      dd if=/dev/sc$i of=/dev/null bs=4k count=1 iflag=direct status=none 2>/dev/null && ok=$((ok + 1))
    done
    for ((i = 0; i < N; i++)); do "$CTL" destroy "sc$i" >/dev/null 2>&1 || true; done
    exited=0 bad=0
    for ((i = 0; i < N; i++)); do
      if wait "${pids[i]}"; then exited=$((exited + 1)); else bad=$((bad + 1)); fi
    done
    sync; echo 3 >/proc/sys/vm/drop_caches; sleep 1
    { meminfo; echo "refcnt: $(cat /sys/module/dblock/refcnt)"; echo "devices: $("$CTL" list --json | grep -c '"name"')";
      echo "up: $up"; echo "read_ok: $ok"; echo "exit0: $exited"; echo "exit_bad: $bad"; echo "seconds: $((SECONDS - t0))"; echo "seconds_up: $t_up"; } >"$RAW/mem/scale-r$r-end"
    log "scale round $r: $up up, $ok read, $exited exited 0, $bad bad, $((SECONDS - t0)) s"
  done
fi

rmmod dblock || log "rmmod dblock failed"
dmesg | grep -iE 'dblock|BUG|WARNING|Oops' | tail -50 >"$RAW/dmesg-dblock.txt"
log "all done"
