#!/bin/bash
# Build (once per machine) the "debug" guest kernel: Debian's linux-source-6.12 with
# KASAN, lockdep, kmemleak, hung-task/softlockup detectors etc., everything the guest
# needs built in (vm/debug-kernel.config); or its PREEMPT_RT variant "debug-rt" (that
# fragment, then vm/debug-rt-kernel.config). The build tree is kept as KDIR for
# out-of-tree modules (`make -C KDIR M=... modules`).
#   usage: vm/build-debug-kernel.sh [rt]   (prints KVER= ROOT= KDIR= lines on stdout)
#   env:   DBLOCK_VM_CACHE (default /var/cache/dblock-vm), DBLOCK_BUILD_JOBS (nproc)
# Layout: $DBLOCK_VM_CACHE/debug[-rt]/<source version>-<fragments hash>/
#   src/    unpacked linux-source-6.12, built in place (= KDIR)
#   root/   boot/vmlinuz-KVER, lib/modules/KVER (modules_install; almost all built in)
#   unpacked  source version of src/;  built  stamp, written last (build complete)
# Other keys' directories are removed after a successful build. Cold build: an hour or
# more on 2 shared cores (niced); warm: instant. Restartable: an interrupted build resumes.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${DBLOCK_VM_CACHE:-/var/cache/dblock-vm}
SRC_PKG=linux-source-6.12
TARBALL=/usr/src/linux-source-6.12.tar.xz
FRAGMENTS=("$HERE/debug-kernel.config")
variant=debug
case ${1:-} in
  "") ;;
  rt) FRAGMENTS+=("$HERE/debug-rt-kernel.config") variant=debug-rt ;;
  *) echo "usage: build-debug-kernel.sh [rt]" >&2; exit 2 ;;
esac
BUILD_DEPS=(linux-source-6.12 build-essential bc bison flex libelf-dev libssl-dev cpio xz-utils kmod)
export DEBIAN_FRONTEND=noninteractive

die() { echo "build-debug-kernel: $*" >&2; exit 1; }
log() { echo "build-debug-kernel: $*" >&2; }

((EUID == 0)) || die "run as root (writes $CACHE, installs packages)"

missing=()
for p in "${BUILD_DEPS[@]}"; do
  [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true) == ii* ]] || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[[ -f $TARBALL ]] || die "$TARBALL missing although $SRC_PKG is installed"

src_ver=$(dpkg-query -W -f='${Version}' "$SRC_PKG")
frag_hash=$(cat "${FRAGMENTS[@]}" | sha256sum | cut -c1-12)
key=$(echo "$src_ver-$frag_hash" | tr -c 'A-Za-z0-9.+_\n-' '_')
base=$CACHE/$variant
dir=$base/$key
mkdir -p "$base"

# One builder at a time; others wait here and then find the stamp.
exec 9>"$base/.lock"
if ! flock -n 9; then
  log "another build holds $base/.lock; waiting"
  flock 9
fi

report() {
  local kver
  kver=$(<"$dir/built")
  echo "KVER=$kver"
  echo "ROOT=$dir/root"
  echo "KDIR=$dir/src"
}

if [[ -f $dir/built ]]; then
  report
  exit 0
fi

log "building $SRC_PKG $src_ver, fragment $frag_hash, in $dir (takes a while)"
start=$SECONDS
if [[ $(cat "$dir/unpacked" 2>/dev/null) != "$src_ver" ]]; then
  # A tree of the same source left by another fragment: reuse it (kbuild rebuilds
  # what the config change touches) rather than unpacking again (~1-3 min).
  rm -rf "$dir"
  for old in "$base"/*/; do
    if [[ $(cat "$old/unpacked" 2>/dev/null) == "$src_ver" ]]; then
      log "reusing the source tree of ${old%/}"
      rm -f "$old/built"
      mv "${old%/}" "$dir"
      break
    fi
  done
fi
if [[ $(cat "$dir/unpacked" 2>/dev/null) != "$src_ver" ]]; then
  rm -rf "$dir"
  mkdir -p "$dir/src"
  tar -xJf "$TARBALL" -C "$dir/src" --strip-components=1
  # Other architectures are never built here, but Kconfig sources their Kconfig files.
  find "$dir/src/arch" -mindepth 1 -maxdepth 1 -type d ! -name x86 ! -name um -print0 |
    xargs -0 -I{} find {} -type f ! -name 'Kconfig*' -delete
  echo "$src_ver" >"$dir/unpacked"
  log "unpacked in $((SECONDS - start))s"
fi
rm -rf "$dir/root" "$dir/initrd.img" "$dir/initrd.sum"

cd "$dir/src"
jobs=${DBLOCK_BUILD_JOBS:-$(nproc)}
mk() { nice -n 10 make -s "-j$jobs" "$@"; }
mk x86_64_defconfig >/dev/null
mk kvm_guest.config >/dev/null
scripts/kconfig/merge_config.sh -m -O . .config "${FRAGMENTS[@]}" >/dev/null
mk olddefconfig >/dev/null

# Every option the fragments set (the last setting of each) must have survived
# olddefconfig (dependencies).
bad=0
while IFS= read -r line; do
  if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
    opt=${BASH_REMATCH[1]} want=${BASH_REMATCH[2]}
    have=$(grep -E "^$opt=" .config | cut -d= -f2- || true)
    [[ $have == "$want" ]] || { log "config: $opt=$want wanted, got '${have:-not set}'"; bad=1; }
  elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
    opt=${BASH_REMATCH[1]}
    if grep -qE "^$opt=[ym]" .config; then log "config: $opt off wanted, got on"; bad=1; fi
  fi
done < <(cat "${FRAGMENTS[@]}" | tac | awk '
  match($0, /^CONFIG_[A-Za-z0-9_]+=/) {o = substr($0, 1, RLENGTH - 1)}
  match($0, /^# CONFIG_[A-Za-z0-9_]+ is not set$/) {o = $2}
  o != "" && !seen[o]++ {print}
  {o = ""}')
((bad == 0)) || die "${FRAGMENTS[*]##*/} do not apply cleanly (see above)"

log "config ok; compiling with -j$jobs (nice 10)"
mk bzImage modules
kver=$(make -s kernelrelease)
mkdir -p "$dir/root/boot"
cp arch/x86/boot/bzImage "$dir/root/boot/vmlinuz-$kver"
mk INSTALL_MOD_PATH="$dir/root" INSTALL_MOD_STRIP=1 DEPMOD=/sbin/depmod modules_install >/dev/null
# modules_install links these to the tree; the guest bind-mounts lib/modules.
rm -f "$dir/root/lib/modules/$kver/build" "$dir/root/lib/modules/$kver/source"
ln -s "$dir/src" "$dir/root/lib/modules/$kver/build"
echo "$kver" >"$dir/built"
log "built $kver in $((SECONDS - start))s"

# Drop the builds of older source versions / fragments.
for old in "$base"/*/; do
  [[ ${old%/} == "$dir" ]] && continue
  log "removing stale build ${old%/}"
  rm -rf "${old%/}"
done
report
