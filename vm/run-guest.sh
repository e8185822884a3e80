#!/bin/bash
# Boot a Debian guest kernel under QEMU (TCG) with the host's root as its root
# (read-only 9p) and run one command in it. Exits with the command's exit code,
# 124 if the guest timed out, 125 if it died without reporting one (panic, crash).
#   usage: vm/run-guest.sh --kernel 6.1|6.12|rt|newest|debug|debug-rt [--mem MB] [--smp N] [--timeout SEC]
#                          [--out DIR] [--root overlay] [--init systemd] -- COMMAND [ARGS...]
# OUT (default: a fresh dir under /var/tmp/dblock-vm-out/) is writable in the guest at
# the same path; it receives dmesg.txt and console.log. The command runs with
# DBLOCK_GUEST_KVER and DBLOCK_OUT set, in the caller's directory (if the guest sees
# it: the guest's /tmp is an empty tmpfs; of the host's /tmp it sees only the checkout
# this script belongs to, if it lives there).
# --root overlay: the root is writable, a tmpfs overlay on the host's (apt install
# works; all is gone at power-off).  --init systemd (implies --root overlay): systemd
# is PID 1 (udevd, journald, fstab, units as on an installed system) and runs the
# command as a service; DBLOCK_GUEST_INIT=systemd is set for it.  Not on the debug
# lines (overlayfs is not built into them).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${DBLOCK_VM_CACHE:-/var/cache/dblock-vm}

die() { echo "run-guest: $*" >&2; exit 2; }
usage() { sed -n 's/^#   \?//; 5,6p' "$0" >&2; exit 2; }

line="" mem=2048 smp=2 limit=900 out="" root="" init=""
while (($#)); do
  case $1 in
    --kernel) line=${2:?}; shift 2 ;;
    --mem) mem=${2:?}; shift 2 ;;
    --smp) smp=${2:?}; shift 2 ;;
    --timeout) limit=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    --root)
      [[ ${2:-} == overlay ]] || die "--root takes 'overlay'"
      root=overlay; shift 2 ;;
    --init)
      [[ ${2:-} == systemd ]] || die "--init takes 'systemd'"
      init=systemd root=overlay; shift 2 ;;
    --) shift; break ;;
    -h | --help) usage ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
[[ -n $line ]] || die "--kernel 6.1|6.12|rt|newest|debug|debug-rt is required"
(($#)) || die "no command given after --"

"$HERE/prepare-kernels.sh" "$line" >/dev/null
# shellcheck source=/dev/null
. "$CACHE/$line.env"

if [[ -z $out ]]; then
  mkdir -p /var/tmp/dblock-vm-out
  out=$(mktemp -d "/var/tmp/dblock-vm-out/$line-XXXXXX")
fi
mkdir -p "$out"
out=$(cd "$out" && pwd -P)
# Both paths travel on the kernel command line, which splits on whitespace.
[[ $out != *[[:space:]]* && $MODDIR != *[[:space:]]* ]] || die "paths must not contain spaces: $out"
rm -f "$out/.guest-rc" "$out/.guest-started" "$out/dmesg.txt"

# The guest's /tmp is its own tmpfs: a checkout under the host's /tmp is shown to it
# as a second read-only 9p share at the same path, so it runs from wherever it lives.
src=$(cd "$HERE/.." && pwd -P) src_args=() src_cmdline=""
if [[ $src == /tmp || $src == /tmp/* ]]; then
  [[ $src != *[[:space:]]* ]] || die "paths must not contain spaces: $src"
  src_args=(-virtfs "local,path=$src,mount_tag=src,security_model=none,readonly=on,multidevs=remap")
  src_cmdline=" dblockvm_src=$src"
fi
mode_cmdline=${root:+ dblockvm_root=$root}${init:+ dblockvm_init=$init systemd.unit=dblock-guest.target}
cwd=$(pwd -P)
if [[ $cwd == /tmp || $cwd == /tmp/* ]]; then
  case $cwd in "$src" | "$src"/*) ;; *) cwd=/ ;; esac
fi
{
  # configfs is a module in Debian's kernels, so the initramfs cannot mount it
  # (the debug kernel has it built in: guest-init.sh has mounted it already).
  echo "mountpoint -q /sys/kernel/config ||" \
    "{ modprobe -q configfs && mount -t configfs configfs /sys/kernel/config; }"
  echo "cd $(printf '%q' "$cwd") 2>/dev/null || cd /"
  # The kernel booted and the command starts: from here a crash is the command's.
  echo ": >$(printf '%q' "$out/.guest-started")"
  printf 'exec'
  printf ' %q' "$@"
  echo
} >"$out/.guest-job.sh"

echo "run-guest: $KVER, ${mem} MB, $smp vCPUs, timeout ${limit}s${init:+, systemd}${root:+, $root root}, out $out" >&2
start=$SECONDS
# A kernel that dies while booting, before the command started, is booted
# once more: under TCG, 7.2 has died in its own early initcalls
# ("Oops: int3" in sched_clock_cpu, text patching racing a vCPU), long before
# dblock.ko or any test could be involved.  Said on stderr, console kept.
for boot in 1 2; do
  set +e
  # stdin from /dev/null: qemu must not grab (and leave raw) the caller's terminal.
  timeout -k 10 "$limit" qemu-system-x86_64 \
    -accel tcg -cpu max -m "$mem" -smp "$smp" -nodefaults -no-reboot \
    -display none -serial stdio -monitor none \
    -kernel "$VMLINUZ" -initrd "$INITRD" \
    -append "console=ttyS0 quiet loglevel=3 panic=-1 tsc=reliable dblockvm_out=$out dblockvm_moddir=$MODDIR$src_cmdline$mode_cmdline" \
    -virtfs local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap \
    ${src_args[@]+"${src_args[@]}"} \
    -virtfs "local,path=$out,mount_tag=out,security_model=none,multidevs=remap" \
    </dev/null 2>&1 | sed -u -e 's/\r$//' -e '/^\[ *[0-9.]*\] reboot: Power down$/d' | tee "$out/console.log"
  qemu_rc=${PIPESTATUS[0]}
  set -e
  if ((boot == 1)) && [[ ! -f $out/.guest-rc && ! -f $out/.guest-started ]] &&
    ((qemu_rc != 124 && qemu_rc != 137)); then
    mv "$out/console.log" "$out/console-boot1.log"
    echo "run-guest: the kernel died while booting, before the command started" \
      "($(grep -m1 -E 'Oops|BUG|panic' "$out/console-boot1.log" || echo 'no oops line'); console:" \
      "$out/console-boot1.log): booting it once more" >&2
    continue
  fi
  break
done
elapsed=$((SECONDS - start))

if [[ -f $out/.guest-rc ]]; then
  rc=$(<"$out/.guest-rc")
  echo "run-guest: command exited $rc after ${elapsed}s (dmesg: $out/dmesg.txt)" >&2
  exit "$rc"
elif ((qemu_rc == 124 || qemu_rc == 137)); then
  echo "run-guest: TIMEOUT: guest still running after ${limit}s, killed (console: $out/console.log)" >&2
  exit 124
else
  echo "run-guest: CRASH: guest ended (qemu exit $qemu_rc) without the command's exit code:" \
    "kernel panic or boot failure? See $out/console.log" >&2
  exit 125
fi
