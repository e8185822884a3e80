#!/bin/bash
# Debian sid (unstable) as a root file system, to build for the newest kernel the way
# a user of that distribution would: its gcc and glibc for the kernel's headers (7.2's
# need gcc 16), its g++, clang, fmt and GoogleTest for the userspace. Made once with
# mmdebstrap from the host's Debian mirror, cached and reused; its package lists are
# refreshed once a day, so a new kernel in sid is found on the next run, not named.
#   usage: vm/sid-root.sh ensure           make or refresh the root; print its path
#          vm/sid-root.sh run -- CMD...    run CMD in the root as root, in the caller's
#                                          directory, with /proc, /sys, /dev, /var/tmp, the
#                                          checkout and $DBLOCK_SID_BIND (space-separated
#                                          directories) bind-mounted at their host paths
#          vm/sid-root.sh enter -- CMD...  the same in a root that is there, as it is (no
#                                          refresh, no network: in a guest, tests/deb)
#   env:   DBLOCK_VM_CACHE (default /var/cache/dblock-vm): the root is <cache>/sid-root
# Nothing of the host's apt state changes. The root's apt (its apt.conf.d/99mmdebstrap)
# accepts a Release file past its Valid-Until date (sid's may be); signatures are checked.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
# shellcheck source=vm/common.sh
. "$HERE/common.sh"
CACHE=${DBLOCK_VM_CACHE:-/var/cache/dblock-vm}
ROOT=$CACHE/sid-root
# Module builds (headers, kbuild, kmod, dkms) and the userspace's toolchains and libraries;
# make deb (debhelper, dh-dkms, lintian, git, the RBD libraries) and what its test uses
# of the root in a guest (e2fsprogs).
PACKAGES=(build-essential cmake pkgconf clang libcli11-dev libfmt-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev liburing-dev libsmartcols-dev libnbd-dev nbdkit linux-headers-amd64 kmod dkms
  openssl
  debhelper dh-dkms lintian git librbd-dev librados-dev e2fsprogs
  xz-utils zstd)
APT_NOVALID='Acquire::Check-Valid-Until "false"'
export DEBIAN_FRONTEND=noninteractive

die() { echo "sid-root: $*" >&2; exit 1; }
log() { echo "sid-root: $*" >&2; }

# in_root CMD...: CMD in the root, in a private mount namespace (nothing to unmount).
in_root() {
  local binds=(/var/tmp "$TOP") d cwd
  # shellcheck disable=SC2206 # a space-separated list
  binds+=(${DBLOCK_SID_BIND:-})
  # CMD runs in the caller's directory if the root sees it (under a bound one), else in /.
  cwd=$(pwd -P)
  for d in "${binds[@]}"; do [[ -d $d ]] || die "cannot bind $d: not a directory"; done
  # shellcheck disable=SC2016 # expanded by the inner shell
  unshare --mount --propagation private -- bash -euc '
    root=$1; cwd=$2; shift 2
    n=$1; shift
    mount -t proc proc "$root/proc"
    mount --rbind /sys "$root/sys"
    mount --rbind /dev "$root/dev"
    # Before the binds: a checkout under /tmp is bound onto this tmpfs.
    mount -t tmpfs tmpfs "$root/tmp"
    for ((i = 0; i < n; i++)); do
      d=$1; shift
      mkdir -p "$root$d"
      mount --rbind "$d" "$root$d"
    done
    exec chroot "$root" bash -c "cd \"\$1\" 2>/dev/null || cd /; shift; exec \"\$@\"" - "$cwd" "$@"
  ' - "$ROOT" "$cwd" "${#binds[@]}" "${binds[@]}" "$@"
}

ensure() {
  ((EUID == 0)) || die "run as root (mmdebstrap, chroot)"
  mkdir -p "$CACHE"
  exec 8>"$CACHE/sid-root.lock"
  flock 8
  local want=${PACKAGES[*]}
  if [[ ! -f $ROOT/.dblock-sid-root ]]; then
    need_packages mmdebstrap
    local mirror t0=$SECONDS
    mirror=$(host_mirror)
    [[ -n $mirror ]] || die "no Debian mirror found in the host's /etc/apt/sources*"
    log "making the sid root file system (mmdebstrap; about a minute)"
    rm -rf "$ROOT" "$ROOT.tmp"
    mmdebstrap --mode=root --variant=minbase --aptopt="$APT_NOVALID" \
      --include="$(IFS=,; echo "${PACKAGES[*]}")" sid "$ROOT.tmp" "$mirror" \
      >"$CACHE/sid-root.log" 2>&1 || die "mmdebstrap failed: see $CACHE/sid-root.log"
    echo "$want" >"$ROOT.tmp/.dblock-sid-root"
    mv "$ROOT.tmp" "$ROOT"
    log "ready in $((SECONDS - t0)) s"
  fi
  # mmdebstrap leaves no package lists: the first refresh follows at once.
  if [[ $(<"$ROOT/.dblock-sid-root") != "$want" ||
    -z $(find "$ROOT/.dblock-sid-updated" -mmin -1440 2>/dev/null) ]]; then
    # Once a day (or when the list changes): new package lists, and the named
    # packages brought up to date, so a new kernel's headers come with the meta package.
    log "refreshing (apt-get update; install ${PACKAGES[*]})"
    in_root apt-get update -qq >"$CACHE/sid-root.log" 2>&1 ||
      die "apt-get update in the sid root failed: see $CACHE/sid-root.log"
    in_root apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >>"$CACHE/sid-root.log" 2>&1 ||
      die "apt-get install in the sid root failed: see $CACHE/sid-root.log"
    in_root apt-get clean
    echo "$want" >"$ROOT/.dblock-sid-root"
    touch "$ROOT/.dblock-sid-updated"
  fi
  flock -u 8
  echo "$ROOT"
}

case ${1:-} in
  ensure) ensure ;;
  run)
    shift
    [[ ${1:-} == -- ]] && shift
    (($#)) || die "usage: sid-root.sh run -- CMD..."
    ensure >/dev/null
    in_root "$@"
    ;;
  enter)
    shift
    [[ ${1:-} == -- ]] && shift
    (($#)) || die "usage: sid-root.sh enter -- CMD..."
    [[ -f $ROOT/.dblock-sid-root ]] || die "no sid root at $ROOT: make it first (vm/sid-root.sh ensure)"
    in_root "$@"
    ;;
  *) sed -n 's/^#   \?//; 7,14p' "$0" >&2; exit 2 ;;
esac
