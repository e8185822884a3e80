# shellcheck shell=bash
# Helpers shared by the vm/ scripts (sourced, not run).

# The host's Debian archive URIs and suites, one "URI SUITE..." line each, from its
# deb822 or one-line apt sources: the project names no mirror of its own.
host_sources() {
  {
    cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '
      /^URIs:/ {u=$2} /^Suites:/ {s=""; for (i=2;i<=NF;i++) s=s" "$i}
      /^Enabled: *no/ {off=1}
      /^$/ {if (u && s && !off) print u s; u=s=""; off=0}
      END {if (u && s && !off) print u s}'
    grep -hE '^deb +(\[[^]]*\] +)?[a-z]+://' /etc/apt/sources.list 2>/dev/null |
      sed -E 's/^deb +(\[[^]]*\] +)?//' | awk '{print $1, $2}'
  } | grep -E '/debian(-security)?/? ' || true
}

# The host's main Debian archive (not the security one).
host_mirror() {
  host_sources | awk '$1 !~ /security/ {print $1; exit}'
}

# need_packages PKG...: installs on the host those of the given packages that are
# missing (not scripts/install-deps.sh: that would also install everything else the
# project needs).
need_packages() {
  local missing=() p
  for p in "$@"; do
    [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null) == ii* ]] || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  echo "installing ${missing[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
