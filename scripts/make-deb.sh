#!/bin/bash
# make deb: the Debian packages (dblock-dkms, libdblock0, libdblock-dev,
# dblock-tools) into DIR, then lintian on them; an error (E:) fails.
#   scripts/make-deb.sh [DIR]      (default build/deb in the checkout)
# The build runs in a copy of the checkout under DIR (dpkg-buildpackage writes
# into the source tree and its parent), so the checkout stays clean.
# DEB_BUILD_OPTIONS defaults to "nocheck noddebs": the unit tests are `make check`'s, and
# DIR holds the four packages only (apt install ./*.deb).
# Needs debhelper, dh-dkms, lintian and the build dependencies
# (scripts/install-deps.sh).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$top/build/deb}
log() { echo "make-deb: $*" >&2; }
die() { log "error: $*"; exit 1; }

version=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$top/dkms.conf")
changelog=$(dpkg-parsechangelog -l "$top/debian/changelog" -S Version)
[[ $changelog == "$version" ]] ||
  die "debian/changelog's version is $changelog, dkms.conf's PACKAGE_VERSION $version: add a changelog entry (dch -v $version)"
missing=$(cd "$top" && dpkg-checkbuilddeps 2>&1) || die "${missing#dpkg-checkbuilddeps: error: } (scripts/install-deps.sh installs them)"

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
src=$dir/dblock-$version
rm -rf "$src"
rm -f "$dir"/*.deb "$dir"/*.changes "$dir"/*.buildinfo
mkdir -p "$src"
# The files git knows and new ones it does not ignore; from a tarball, everything
# but build output.
if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # (minus files deleted but not yet committed)
  (cd "$top" && git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do if [[ -e $f ]]; then printf '%s\0' "$f"; fi; done |
    tar --null -T - -cf -) | tar -xf - -C "$src"
else
  (cd "$top" && tar --exclude=./build --exclude='./build-*' -cf - .) | tar -xf - -C "$src"
fi

log "dpkg-buildpackage in $src"
(cd "$src" && DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS-nocheck noddebs} \
  dpkg-buildpackage -us -uc -b -j"$(nproc)") >"$dir/build.log" 2>&1 ||
  { tail -n 40 "$dir/build.log" >&2; die "dpkg-buildpackage failed (whole log: $dir/build.log)"; }
rm -rf "$src"
changes=$(ls "$dir"/dblock_"${version}"_*.changes)
for p in dblock-dkms libdblock0 libdblock-dev dblock-tools; do
  ls "$dir/${p}_${version}_"*.deb >/dev/null 2>&1 || die "no $p package in $dir"
done

log "lintian $changes"
lintian --info --display-info --fail-on error "$changes" | tee "$dir/lintian.txt" >&2 ||
  die "lintian reports errors (above; $dir/lintian.txt)"
log "built in $dir: $(cd "$dir" && echo *.deb)"
