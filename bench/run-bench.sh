#!/bin/bash
# Side-by-side block benchmark (not a test): fio in one QEMU guest boot on brd,
# null_blk, loop over tmpfs, NBD (nbdkit memory, unix socket) and dblock
# (null, RAM and file backends, 1 and 2 queues), dblock's file backend with
# O_DIRECT vs loop with direct I/O on a null_blk device with 100 us latency,
# then dblock memory, scale (256 devices) and a profile of the RAM 4k
# random-read path.
#   usage: bench/run-bench.sh [--kernel 6.12|6.1|newest] [--quick] [--runtime S] [--ramp S]
#                             [--mem MB] [--only T1,T2,...] [--no-install] [--no-build]
#                             [--prebuilt DIR]  (DIR/dblock.ko and DIR/bin/: a known-good pair)
#                             [--modparams "poll_us=0"]  (dblock.ko's parameters)
#                             [--results DIR]  (where latest.{md,json,png} go)
#                             [--lat-us US]  (the *-lat device's completion time, default 100)
#                             [--rounds N]  (rounds of the targets that take turns, default 3)
# Targets for --only: brd null_blk loop nbd dblock-{null,ram,file}-{1q,2q} interleaved nbd-k1 nbd-k2
#   dblock-nbd-1q dblock-nbd-2q (one nbdkit memory server, kernel nbd client vs dblock's nbd backend)
#   dblock-ram-1q-coloc profile mem scale
#   ublk-{null,ram}-{1q,2q} ublk-file-1q (the same dblock-serve over the kernel's ublk: --transport ublk)
#   ko-{null,ram}-{1q,2q} (that dblock-serve over dblock.ko, in the same rounds as the ublk rows)
#   kublk-null-{1q,2q} kublk-loop-1q (the kernel's ublk selftest server, bench/build-kublk.sh; --kernel newest)
#   null_blk-lat loop-dio-lat dblock-file-dio-lat dblock-file-uring-lat dblock-file-thr-lat dblock-null-ceil
#     (100 us latency null_blk device; file I/O by dblock.ko, on io_uring, on threads; null: the ceiling)
# Output: a full run writes bench/results/latest.{md,json,png} (tracked) and
# copies the raw files to bench/results/raw-latest/ (git-ignored); a --quick or
# --only run leaves bench/results/ alone and writes its report next to its raw
# files in the run dir (/var/tmp/dblock-bench/LINE-XXXXXX/), unless --results.
# TCG emulation: figures are not absolute speeds; only ratios within one run
# mean something.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
line=6.12 quick=0 runtime="" ramp="" mem=4096 only="" install=1 build=1 prebuilt="" modparams="" results="" lat_us=100 rounds=3
while (($#)); do
  case $1 in
    --kernel) line=${2:?}; shift 2 ;;
    --quick) quick=1; shift ;;
    --runtime) runtime=${2:?}; shift 2 ;;
    --ramp) ramp=${2:?}; shift 2 ;;
    --mem) mem=${2:?}; shift 2 ;;
    --only) only=${2:?}; shift 2 ;;
    --no-install) install=0; shift ;;
    --no-build) build=0; shift ;;
    --prebuilt) prebuilt=$(cd "${2:?}" && pwd); build=0; shift 2 ;;
    --modparams) modparams=${2?}; shift 2 ;;
    --results) results=${2:?}; shift 2 ;;
    --lat-us) lat_us=${2:?}; shift 2 ;;
    --rounds) rounds=${2:?}; shift 2 ;;
    -h | --help) sed -n '2,28p' "$0" | sed 's/^# \?//'; exit 0 ;;
    *) echo "run-bench: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "run-bench: --rounds wants a count of 1 or more, not '$rounds'" >&2; exit 2; }
if ((quick)); then runtime=${runtime:-2} ramp=${ramp:-1}; else runtime=${runtime:-10} ramp=${ramp:-2}; fi

say() { echo "run-bench: $*" >&2; }

# 1. Packages (Debian's apt; matplotlib for the system /usr/bin/python3).
if ((install)); then
  "$TOP/scripts/install-deps.sh" fio nbdkit nbd-client python3-matplotlib linux-perf ||
    { say "installing packages failed (is another apt running? retry)"; exit 1; }
fi
PY=/usr/bin/python3

# 2. Build: userspace and a module for the guest kernel (a private copy of the
#    sources, so a concurrent edit or test build does not race us).
"$TOP/vm/prepare-kernels.sh" "$line" >/dev/null
# shellcheck source=/dev/null
. "${DBLOCK_VM_CACHE:-/var/cache/dblock-vm}/$line.env"
kmod=/var/tmp/dblock-kmod-bench/$KVER
if ((build)); then
  say "building userspace and dblock.ko for $KVER"
  cmake -S "$TOP" -B "$TOP/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  # Only what the bench runs: a half-finished test elsewhere must not stop us.
  targets=(dblockctl dblock_sample_ramdisk)
  cmake --build "$TOP/build" --target help | grep -c '^\.\.\. dblock-serve$' >/dev/null && targets+=(dblock-serve)
  for t in "${targets[@]}"; do
    cmake --build "$TOP/build" -j2 --target "$t" >"/var/tmp/dblock-bench-build-$t.log" 2>&1 ||
      say "warning: building $t failed (see /var/tmp/dblock-bench-build-$t.log); using the existing binary if any"
  done
  "$TOP/scripts/build-module.sh" "$KDIR" "$kmod" >"/var/tmp/dblock-bench-kbuild.log" 2>&1 ||
    { tail -20 /var/tmp/dblock-bench-kbuild.log >&2; exit 1; }
fi

# kublk, the kernel's ublk selftest server, from sid's linux-source for the newest
# line's kernel (the ublk interface of the kernel it runs on), when its rows are wanted.
kublk=""
if [[ $line == newest && ( -z $only || ",$only," == *,kublk-* ) ]]; then
  kublk=$("$TOP/bench/build-kublk.sh" "$KVER") ||
    say "warning: building kublk failed: the kublk-* rows are skipped"
elif [[ ",$only," == *,kublk-* ]]; then
  say "warning: kublk is built for --kernel newest only: the kublk-* rows are skipped"
fi

# 3. Snapshot the binaries (others rebuild build/bin while we run).
mkdir -p /var/tmp/dblock-bench
out=$(mktemp -d "/var/tmp/dblock-bench/$line-XXXXXX")
mkdir -p "$out/bin"
bindir=${prebuilt:+$prebuilt/bin}
bindir=${bindir:-$TOP/build/bin}
for b in dblockctl dblock_sample_ramdisk dblock-serve; do
  [[ -x $bindir/$b ]] && cp "$bindir/$b" "$out/bin/"
done
# Tools linked with libdblock.so.0 (the default) run with this copy of it.
mkdir -p "$out/lib"
for l in "$bindir"/../lib/libdblock.so.*; do
  [[ -e $l ]] && cp -a "$l" "$out/lib/"
done
cp "${prebuilt:-$kmod}/dblock.ko" "$out/dblock.ko"
if [[ -n $kublk ]]; then
  cp "$kublk" "$out/bin/kublk"
  cp "${kublk%/*}/VERSION" "$out/bin/kublk.version"
fi
{
  echo "host_uptime_before=$(uptime)"
  echo "git=$(git -C "$TOP" rev-parse --short HEAD)$(git -C "$TOP" diff --quiet HEAD -- kernel libdblock include || echo '+dirty')"
  echo "date=$(date -u +%FT%TZ)"
  echo "line=$line"
  echo "guest_mem_mb=$mem"
  echo "binaries=${prebuilt:-built from this tree now}"
  echo "modparams=${modparams:-defaults}"
  echo "lat_us=$lat_us"
  echo "rounds=$rounds"
  echo "kublk=${kublk:+$(<"${kublk%/*}/VERSION"), static, $kublk}"
} >"$out/host.env"

# 4. The guest: every measurement in one boot.
say "guest run: kernel $line, runtime ${runtime}s + ramp ${ramp}s per job, out $out"
set +e
"$TOP/vm/run-guest.sh" --kernel "$line" --mem "$mem" --timeout 2400 --out "$out" -- \
  env LD_LIBRARY_PATH="$out/lib" DBLOCK_BENCH_MODPARAMS="$modparams" DBLOCK_BENCH_LAT_NSEC=$((lat_us * 1000)) DBLOCK_BENCH_ROUNDS="$rounds" "$TOP/bench/guest-bench.sh" "$out/bin" "$out/dblock.ko" "$runtime" "$ramp" "$quick" "$only" \
  >"$out/guest.log" 2>&1
rc=$?
set -e
echo "host_uptime_after=$(uptime)" >>"$out/host.env"
grep '^bench:' "$out/guest.log" >&2 || true
if ((rc != 0)); then
  say "guest run failed (rc $rc): $out/guest.log"; tail -20 "$out/guest.log" >&2
  # Report what was measured, if anything (e.g. a harness hiccup after the guest finished).
  [[ -s $out/raw/guest.env ]] || exit 1
  say "reporting the partial results"
fi

# 5. Report. Only a full run replaces the tracked bench/results/latest.*; the
#    raw files never enter the tree (bench/results/raw-latest/ is git-ignored).
if [[ -n $results ]]; then res=$results
elif ((quick)) || [[ -n $only ]]; then res=$out
else res=$TOP/bench/results
fi
mkdir -p "$res"
"$PY" "$TOP/bench/report.py" "$out" "$res/latest"
if [[ $(cd "$res" && pwd -P) != "$(cd "$out" && pwd -P)" ]]; then
  rm -rf "$res/raw-latest"
  cp -r "$out/raw" "$res/raw-latest"
  cp "$out/host.env" "$res/raw-latest/"
fi
say "results: $res/latest.md, latest.json, latest.png (raw: $out/raw)"
