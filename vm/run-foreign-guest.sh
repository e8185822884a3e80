#!/bin/bash
# Boot a Debian guest of a foreign architecture under QEMU (TCG) and run one command in
# it: the arm64/armhf/i386 counterpart of vm/run-guest.sh, with the same exit codes
# (the command's; 124 timeout; 125 panic/crash without an exit code).
#   usage: vm/run-foreign-guest.sh --arch arm64|armhf|i386 [--kernel 6.1|6.12]
#            [--mem MB] [--smp N] [--timeout SEC] [--out DIR] [--src DIR]
#            [--env NAME=VALUE]... -- COMMAND [ARGS...]
# The guest's root is a Debian root file system of that architecture (read-only 9p,
# made by vm/prepare-foreign.sh); host binaries cannot run there. The checkout (--src,
# default this one; not under /tmp) is a second read-only 9p share at the same path, so
# cross-built binaries (scripts/cross-build.sh: build-<ARCH>/bin) are visible; OUT as in
# run-guest.sh. The guest's environment is cleared: pass settings with --env.
# Set in the guest: DBLOCK_BIN=SRC/build-ARCH/bin, DBLOCK_ARCH, and DBLOCK_KO=OUT/dblock.ko
# (a copy of /var/tmp/dblock-kmod/KVER/dblock.ko, if built).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${DBLOCK_VM_CACHE:-/var/cache/dblock-vm}

die() { echo "run-foreign-guest: $*" >&2; exit 2; }

arch="" line=6.1 mem="" smp=2 limit=900 out="" src=$(cd "$HERE/.." && pwd -P) envs=()
while (($#)); do
  case $1 in
    --arch) arch=${2:?}; shift 2 ;;
    --kernel) line=${2:?}; shift 2 ;;
    --mem) mem=${2:?}; shift 2 ;;
    --smp) smp=${2:?}; shift 2 ;;
    --timeout) limit=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    --src) src=$(cd "${2:?}" && pwd -P); shift 2 ;;
    --env) [[ $2 == [A-Za-z_]*=* ]] || die "--env wants NAME=VALUE"; envs+=("$2"); shift 2 ;;
    --) shift; break ;;
    -h | --help) sed -n 's/^#   \?//; 5,7p' "$0" >&2; exit 2 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
(($#)) || die "no command given after --"
# Per architecture: machine, CPU, console. Measured choices (vm/README.md):
#   arm64: cortex-a57 (-cpu max is several times slower under TCG);
#   armhf: virt,highmem=off (otherwise the PCI bus, and so 9p, is not found), 1 GiB;
#   i386:  qemu32 (-cpu max makes the 686-pae kernel WARN and taint).
# shellcheck disable=SC2054 # the commas are part of -M's value
case $arch in
  arm64) qemu=(qemu-system-aarch64 -M virt -cpu cortex-a57) console=ttyAMA0 defmem=2048 ;;
  armhf) qemu=(qemu-system-arm -M virt,highmem=off -cpu cortex-a15) console=ttyAMA0 defmem=1024 ;;
  i386) qemu=(qemu-system-i386 -M pc -cpu qemu32) console=ttyS0 defmem=2048 ;;
  *) die "--arch arm64|armhf|i386 is required" ;;
esac
mem=${mem:-$defmem}

"$HERE/prepare-foreign.sh" "$arch" "$line" >/dev/null
# shellcheck source=/dev/null
. "$CACHE/$arch-$line.env"

if [[ -z $out ]]; then
  mkdir -p /var/tmp/dblock-vm-out
  out=$(mktemp -d "/var/tmp/dblock-vm-out/$arch-$line-XXXXXX")
fi
mkdir -p "$out"
out=$(cd "$out" && pwd -P)
[[ $out != *[[:space:]]* && $src != *[[:space:]]* ]] || die "paths must not contain spaces"
rm -f "$out/.guest-rc" "$out/dmesg.txt"
# The root is read-only in the guest: mount points for OUT and the checkout are made
# here (OUT's removed again afterwards); one under /tmp is made in the guest's tmpfs.
[[ $src == /tmp || $src == /tmp/* ]] || mkdir -p "$ROOTFS$src"
made_out=""
[[ -d $ROOTFS$out ]] || { mkdir -p "$ROOTFS$out"; made_out=$ROOTFS$out; }
trap '[[ -z $made_out ]] || rmdir "$made_out" 2>/dev/null || true' EXIT

# Defaults for the project's guest cases (tests/guest/dblock-lib.sh), which --env
# overrides: the cross-built tools, and the module built for this kernel by
# scripts/cross-build.sh, copied into OUT (/var/tmp/dblock-kmod is not in the guest).
ko=/var/tmp/dblock-kmod/$KVER/dblock.ko
if [[ -f $ko ]]; then
  cp "$ko" "$out/dblock.ko"
  envs=("DBLOCK_KO=$out/dblock.ko" ${envs[@]+"${envs[@]}"})
fi
envs=("DBLOCK_BIN=$src/build-$arch/bin" "DBLOCK_ARCH=$arch" ${envs[@]+"${envs[@]}"})

cwd=$(pwd -P)
case $cwd in "$src" | "$src"/*) ;; *) cwd=/ ;; esac
{
  echo "mountpoint -q /sys/kernel/config ||" \
    "{ modprobe -q configfs && mount -t configfs configfs /sys/kernel/config; }"
  for e in ${envs[@]+"${envs[@]}"}; do printf 'export %s=%q\n' "${e%%=*}" "${e#*=}"; done
  echo "cd $(printf '%q' "$cwd") 2>/dev/null || cd /"
  printf 'exec'
  printf ' %q' "$@"
  echo
} >"$out/.guest-job.sh"

echo "run-foreign-guest: $arch $KVER, ${mem} MB, $smp vCPUs, timeout ${limit}s, out $out" >&2
start=$SECONDS
set +e
timeout -k 10 "$limit" "${qemu[@]}" \
  -accel tcg -m "$mem" -smp "$smp" -nodefaults -no-reboot \
  -display none -serial stdio -monitor none \
  -kernel "$VMLINUZ" -initrd "$INITRD" \
  -append "console=$console quiet loglevel=3 panic=-1 dblockvm_out=$out dblockvm_moddir=$MODDIR dblockvm_src=$src" \
  -virtfs "local,path=$ROOTFS,mount_tag=host,security_model=none,readonly=on,multidevs=remap" \
  -virtfs "local,path=$out,mount_tag=out,security_model=none,multidevs=remap" \
  -virtfs "local,path=$src,mount_tag=src,security_model=none,readonly=on,multidevs=remap" \
  </dev/null 2>&1 | sed -u -e 's/\r$//' -e '/^\[ *[0-9.]*\] reboot: Power down$/d' | tee "$out/console.log"
qemu_rc=${PIPESTATUS[0]}
set -e
elapsed=$((SECONDS - start))

if [[ -f $out/.guest-rc ]]; then
  rc=$(<"$out/.guest-rc")
  echo "run-foreign-guest: command exited $rc after ${elapsed}s (dmesg: $out/dmesg.txt)" >&2
  exit "$rc"
elif ((qemu_rc == 124 || qemu_rc == 137)); then
  echo "run-foreign-guest: TIMEOUT: guest still running after ${limit}s (console: $out/console.log)" >&2
  exit 124
else
  echo "run-foreign-guest: CRASH: guest ended (qemu exit $qemu_rc) without the command's" \
    "exit code: panic or boot failure? See $out/console.log" >&2
  exit 125
fi
