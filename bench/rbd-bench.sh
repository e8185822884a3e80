#!/bin/bash
# Ceph RBD three ways, in one guest boot against one throwaway cluster:
# krbd (`rbd map`, the kernel client), rbd-nbd (librbd behind NBD) and
# dblock-serve --backend rbd: (librbd's async API behind dblock).  The same fio jobs as
# bench/guest-bench.sh: 4k randread QD1/QD32, 4k randwrite QD32, 1 MiB
# sequential read/write QD8.  Prints a table of IOPS and ratios.
#   usage: bench/rbd-bench.sh [--kernel 6.12|6.1] [--runtime S] [--ramp S] [--rounds N] [--mem MB]
#                             [--osds N] [--queues N] [--depth N] [--librbd-conf "KEY=VALUE ..."]
# On the host it installs what it needs (scripts/install-deps.sh: Ceph,
# rbd-nbd, fio), builds dblock-serve and dblock.ko for the guest kernel, and
# runs a snapshot of them (`--no-build`: use build/bin and the module in
# /var/tmp/dblock-kmod-bench/KVER as they are).
# TCG emulation: figures are not absolute speeds; only ratios within one run
# mean something.  librbd's cache is off for both librbd clients (krbd has
# none), so every write is acknowledged by the OSD in all three.
# --librbd-conf: Ceph options for both librbd clients (rbd-nbd and
# dblock-rbd) alike, e.g. "ms_async_op_threads=1"; the cluster keeps its own.
# Output: the table on stdout, raw fio JSON and the table in OUT
# (default /var/tmp/dblock-rbd-bench/<date>/).
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
line=6.12 runtime=15 ramp=3 rounds=2 mem=6144 osds=1 queues=2 depth=64 in_guest=0 build=1
librbd_conf=""
out=${RBD_BENCH_OUT:-/var/tmp/dblock-rbd-bench/$(date +%Y%m%d-%H%M%S)}
while (($#)); do
  case $1 in
    --kernel) line=${2:?}; shift 2 ;;
    --runtime) runtime=${2:?}; shift 2 ;;
    --ramp) ramp=${2:?}; shift 2 ;;
    --rounds) rounds=${2:?}; shift 2 ;;
    --mem) mem=${2:?}; shift 2 ;;
    --osds) osds=${2:?}; shift 2 ;;
    --queues) queues=${2:?}; shift 2 ;;
    --depth) depth=${2:?}; shift 2 ;;
    --librbd-conf) librbd_conf=${2?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    --in-guest) in_guest=1; shift ;;
    --no-build) build=0; shift ;;
    -h | --help) sed -n '2,18p' "$0" | sed 's/^# \?//'; exit 0 ;;
    *) echo "rbd-bench: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done

if ((!in_guest)); then
  say() { echo "rbd-bench: $*" >&2; }
  mkdir -p "$out"
  "$TOP/vm/prepare-kernels.sh" "$line" >/dev/null
  # shellcheck source=/dev/null
  . "${DBLOCK_VM_CACHE:-/var/cache/dblock-vm}/$line.env"
  kmod=/var/tmp/dblock-kmod-bench
  if ((build)); then
    "$TOP/scripts/install-deps.sh" || { say "installing packages failed"; exit 1; }
    say "building dblock-serve, dblockctl and dblock.ko for $KVER"
    cmake -S "$TOP" -B "$TOP/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$TOP/build" -j2 --target dblock-serve dblockctl >"$out/build.log" 2>&1 ||
      { tail -20 "$out/build.log" >&2; exit 1; }
    "$TOP/scripts/build-module.sh" "$KDIR" "$kmod/$KVER" >>"$out/build.log" 2>&1 ||
      { tail -20 "$out/build.log" >&2; exit 1; }
  fi
  # A snapshot: a rebuild of build/bin must not change what the guest runs.
  mkdir -p "$out/bin" "$out/kmod/$KVER"
  cp "$TOP/build/bin/dblock-serve" "$TOP/build/bin/dblockctl" "$out/bin/"
  cp -a "$TOP"/build/lib/libdblock.so* "$out/bin/"
  cp "$kmod/$KVER/dblock.ko" "$out/kmod/$KVER/"
  echo "git $(git -C "$TOP" rev-parse --short HEAD), $(date -u +%FT%TZ), host: $(uptime)" >"$out/host.env"
  "$TOP/vm/run-guest.sh" --kernel "$line" --mem "$mem" --timeout 3600 --out "$out" -- \
    env DBLOCK_BIN="$out/bin" LD_LIBRARY_PATH="$out/bin" DBLOCK_KMOD_DIR="$out/kmod" \
    "$TOP/bench/rbd-bench.sh" --in-guest --runtime "$runtime" --ramp "$ramp" --rounds "$rounds" --osds "$osds" \
    --queues "$queues" --depth "$depth" --librbd-conf "$librbd_conf" --out "$out"
  [[ -s $out/table.md ]] || { say "no table: see $out/console.log"; exit 1; }
  mkdir -p "$TOP/bench/results"
  { echo "# Ceph RBD: krbd, rbd-nbd and dblock-rbd (bench/rbd-bench.sh)"; echo
    echo "TCG emulation on a shared host: only ratios within this one run mean something."
    cat "$out/host.env"; echo; cat "$out/table.md"; } >"$TOP/bench/results/rbd-latest.md"
  say "results: bench/results/rbd-latest.md (raw: $out)"
  exit 0
fi

# ---- in the guest ----
. "$TOP/tests/guest/lib.sh"
. "$TOP/tests/guest/dblock-lib.sh"
. "$TOP/tests/guest/ceph-fixture.sh"
RAW=$out/raw
mkdir -p "$RAW"
SIZE_MB=256
JOBS=(
  "rr4k_qd1 --rw=randread --bs=4k --iodepth=1"
  "rr4k_qd32 --rw=randread --bs=4k --iodepth=32"
  "rw4k_qd32 --rw=randwrite --bs=4k --iodepth=32"
  "sr1m_qd8 --rw=read --bs=1M --iodepth=8"
  "sw1m_qd8 --rw=write --bs=1M --iodepth=8"
)
TARGETS=(krbd rbd-nbd dblock)

bench_cleanup() {
  set +e
  [[ -n ${RBD_PID:-} ]] && kill -TERM "$RBD_PID" && sleep 2
  rbd-nbd unmap /dev/nbd0 2>/dev/null
  rbd unmap -o noudev /dev/rbd0 2>/dev/null
  "$DBLOCKCTL" destroy --force rbdbench >/dev/null 2>&1
  ceph_stop
  umount /tmp/rbd-bench-cluster 2>/dev/null
  rmmod dblock 2>/dev/null
}
trap bench_cleanup EXIT

cd /tmp
load_dblock
trap bench_cleanup EXIT
# The cluster's own tmpfs: /tmp's default half of RAM filled up with three
# images written over and over, and the OSD died of ENOSPC mid-run.
mkdir -p /tmp/rbd-bench-cluster
mount -t tmpfs -o size=80% tmpfs /tmp/rbd-bench-cluster
ceph_start --osds "$osds" --dir /tmp/rbd-bench-cluster/ceph
for t in "${TARGETS[@]}"; do
  ceph_create_image "img-$t" 1G --image-feature layering,exclusive-lock
done

# What the guest looked like when a target stalled: memory, the cluster, the kernel.
diagnose() {
  local target=$1
  { echo "== free"; free -m; echo "== ps"; ps -eo pid,rss,stat,wchan:30,comm --sort=-rss | head -15
    echo "== ceph -s"; timeout 20 ceph -c "$CEPH_CONF" -s 2>&1
    echo "== dmesg"; dmesg | tail -40; } >"$RAW/$target.diagnose.txt" 2>&1
  log "$target: diagnostics in $RAW/$target.diagnose.txt"
}

prefill() {
  local target=$1 dev=$2
  log "$target: prefill ${SIZE_MB} MiB of $dev"
  [[ -s /tmp/fill ]] || dd if=/dev/urandom of=/tmp/fill bs=1M count=16 status=none
  # A stalled client must cost this target its figures, not the whole run.
  if ! timeout 900 bash -c 'for ((i = 0; i < $1 / 16; i++)); do cat /tmp/fill; done |
      dd of="$2" bs=1M oflag=direct iflag=fullblock status=none' _ "$SIZE_MB" "$dev"; then
    log "$target: prefill failed or stalled; no figures for it"
    diagnose "$target"
    return 1
  fi
  log "$target: prefilled; $(free -m | awk '/^Mem:/ {print $7 " MiB available"}')"
}

run_job() {
  local target=$1 dev=$2 job=$3 round=$4 name opts out
  name=${job%% *} opts=${job#* }
  out=$RAW/$target@$name@r$round
  # shellcheck disable=SC2086
  if ! timeout -k 30 $((runtime + ramp + 120)) fio --name="$name" --filename="$dev" --ioengine=libaio \
      --direct=1 --time_based --runtime="$runtime" --ramp_time="$ramp" --size=${SIZE_MB}M \
      --norandommap --randrepeat=0 --group_reporting --output-format=json $opts \
      >"$out.json" 2>"$out.err"; then
    log "$target $name round $round: fio failed: $(head -c 300 "$out.err")"
    diagnose "$target-$name-r$round"
    return 1
  fi
  log "$target $name round $round: $(python3 -c 'import json,sys; j=json.load(open(sys.argv[1]))["jobs"][0]; print(round(j["read"]["iops"]+j["write"]["iops"]))' "$out.json" 2>/dev/null) IOPS"
}

# All three clients up at once, each on its own image, so that every round
# can take turns job by job: a cluster warms up (and a host's load drifts)
# over a run, and whoever went first would pay for it.
declare -A DEV
client_args=()
for kv in $librbd_conf; do client_args+=("--$kv"); done
log "librbd options of both librbd clients: ${librbd_conf:-defaults}"
# librados reads CEPH_ARGS; rbd-nbd takes the same options on its command line.
CEPH_ARGS="${client_args[*]}" start_rbd_server rbdbench img-dblock --queues "$queues" --depth "$depth" --max-io 512K
cat /tmp/rbd-rbdbench.log
DEV[dblock]=/dev/rbdbench
modprobe rbd
# The guest runs no udev: do not wait for it.
DEV[krbd]=$(timeout 120 rbd map -o noudev rbd/img-krbd) || die "rbd map failed"
modprobe nbd nbds_max=4
# librbd cache off, like dblock-rbd's default.  Without an I/O timeout a
# stalled rbd-nbd (seen here on 1 MiB writes) holds fio in D state for good.
DEV[rbd-nbd]=$(timeout 120 rbd-nbd map rbd/img-rbd-nbd --rbd-cache=false --io-timeout 60 "${client_args[@]}") ||
  die "rbd-nbd map failed"
live=()
for t in "${TARGETS[@]}"; do
  prefill "$t" "${DEV[$t]}" && live+=("$t")
done
for ((r = 1; r <= rounds; r++)); do
  for job in "${JOBS[@]}"; do
    # Rotate who goes first from job to job and round to round.
    n=${#live[@]} k=$(( (r + ${#job}) % (n > 0 ? n : 1) ))
    for ((i = 0; i < n; i++)); do
      t=${live[$(( (i + k) % n ))]}
      run_job "$t" "${DEV[$t]}" "$job" "$r" || true
    done
  done
done
timeout 60 rbd-nbd unmap "${DEV[rbd-nbd]}" || log "rbd-nbd unmap failed"
rbd unmap -o noudev "${DEV[krbd]}" || log "rbd unmap failed"
kill -TERM "$RBD_PID"
wait_exit "$RBD_PID" 60
RBD_PID=""

python3 - "$RAW" "$out/table.md" "$runtime" "$osds" "$queues" "$depth" "$rounds" <<'PY'
import glob, json, os, statistics, sys
raw, dest, runtime, osds, queues, depth, rounds = sys.argv[1:]
jobs = ["rr4k_qd1", "rr4k_qd32", "rw4k_qd32", "sr1m_qd8", "sw1m_qd8"]
def iops(t, j):
    vals = []
    for path in glob.glob(os.path.join(raw, f"{t}@{j}@r*.json")):
        try:
            d = json.load(open(path))["jobs"][0]
            vals.append(d["read"]["iops"] + d["write"]["iops"])
        except Exception:
            pass
    return (statistics.median(vals), vals) if vals else (None, [])
def r(a, b):
    return f"{a / b:.2f}x" if a and b else "n/a"
lines = [f"fio {runtime} s per job, median of {rounds} rounds taking turns job by job; "
         f"{osds} OSD(s); dblock-rbd {queues} queues x {depth}; kernel {os.uname().release}; TCG",
         "", "| job | krbd IOPS | rbd-nbd IOPS | dblock IOPS | dblock/krbd | dblock/rbd-nbd | rounds (k / n / d) |",
         "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
for j in jobs:
    (k, kv), (n, nv), (d, dv) = iops("krbd", j), iops("rbd-nbd", j), iops("dblock", j)
    f = lambda v: f"{v:.0f}" if v is not None else "failed"
    per = " / ".join(",".join(f"{x:.0f}" for x in v) or "-" for v in (kv, nv, dv))
    lines.append(f"| {j} | {f(k)} | {f(n)} | {f(d)} | {r(d, k)} | {r(d, n)} | {per} |")
text = "\n".join(lines) + "\n"
open(dest, "w").write(text)
print(text)
PY
[[ -z $librbd_conf ]] || printf "\nBoth librbd clients (rbd-nbd, dblock-rbd) ran with: %s\n" "$librbd_conf" >>"$out/table.md"
ceph_stop
unload_dblock
