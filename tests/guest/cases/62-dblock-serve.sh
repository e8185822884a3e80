#!/bin/bash
# dblock-serve: the null, ram and file backends, a --config file, SIGTERM and
# SIGINT destroy the device and the server exits 0, and the one-line errors
# for the common mistakes (module not loaded, not root, name taken), of
# dblock-serve, dblockctl and the sample alike.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../dblock-lib.sh"

SERVE=$DBLOCK_BIN/dblock-serve

# expect_exit CODE PATTERN CMD...: CMD fails with exit code CODE and one
# line of output matching PATTERN.  expect_error: the work failed (1);
# expect_usage_error: a bad setting, found before anything is opened (2).
expect_exit() {
  local code=$1 pattern=$2 out rc=0
  shift 2
  out=$("$@" 2>&1) || rc=$?
  log "$* -> rc=$rc: $out"
  assert_eq "$code" "$rc" "exit code of $*"
  assert_eq 1 "$(wc -l <<<"$out")" "lines of output of $*"
  grep -q -- "$pattern" <<<"$out" || die "expected '$pattern' in: $out"
}
expect_error() { expect_exit 1 "$@"; }
expect_usage_error() { expect_exit 2 "$@"; }

# backend_is NAME TEXT: the kernel has TEXT as NAME's backend description,
# and dblockctl list (-o, -n, -r), info (text and JSON) and sysfs say so.
backend_is() {
  local name=$1 text=$2 raw=${2// /\\x20}
  assert_eq "$text" "$(cat "/sys/block/$1/dblock/backend")" "sysfs backend of $name"
  assert_eq "$name $raw" "$("$DBLOCKCTL" list -o NAME,BACKEND -n -r | grep "^$name ")" "list -o NAME,BACKEND -n -r"
  "$DBLOCKCTL" list -o name,Backend -n | grep -qE "^$name +${text//./\\.}\$" ||
    die "dblockctl list -o name,Backend -n: no '$name $text' in: $("$DBLOCKCTL" list -o name,backend -n)"
  "$DBLOCKCTL" list | head -n 1 | grep -q ' BACKEND$' || die "dblockctl list has no BACKEND heading"
  "$DBLOCKCTL" info --json "$name" | grep -qF "\"backend\": \"$text\"" ||
    die "dblockctl info --json $name: no \"backend\": \"$text\""
  "$DBLOCKCTL" info "$name" | grep -qE "^backend: +${text//./\\.}\$" ||
    die "dblockctl info $name: no 'backend: $text'"
}

# log_has FILE PATTERN
log_has() { grep -q -- "$2" "$1" || { cat "$1" >&2; die "no '$2' in $1"; }; }

# serve_bg NAME ARGS...: start dblock-serve in the background, wait for the disk.
serve_bg() {
  local name=$1
  shift
  "$SERVE" "$name" "$@" >"/tmp/serve-$name.log" 2>&1 &
  SERVE_PID=$!
  local deadline=$((SECONDS + 30))
  until [[ -b /dev/$name ]]; do
    kill -0 "$SERVE_PID" 2>/dev/null || { cat "/tmp/serve-$name.log" >&2; die "dblock-serve $name exited early"; }
    ((SECONDS < deadline)) || die "timed out waiting for /dev/$name"
    sleep 0.1
  done
}

if grep -q '^dblock ' /proc/modules; then rmmod dblock; fi
expect_error "module is not loaded (fix: sudo modprobe dblock" "$SERVE" nomod --backend null --size 64M
expect_error "module is not loaded (fix: sudo modprobe dblock" "$SAMPLE" --name nomod
expect_error "module is not loaded (fix: sudo modprobe dblock" "$SAMPLE" -d
expect_error "module is not loaded (fix: sudo modprobe dblock" "$DBLOCKCTL" create nomod --size 64M
expect_error "module is not loaded (fix: sudo modprobe dblock" "$DBLOCKCTL" list
expect_usage_error "needs a size" "$SERVE" nosize --backend ram
expect_usage_error "not one of ram, null, file:PATH" "$SERVE" badbackend --backend disk --size 1M
expect_usage_error "unknown key 'sizee'" "$SERVE" --config <(printf 'name=x\nsizee=1G\n')

load_dblock
# One release number: the module's (modinfo, and sysfs once loaded) is the tools'.
module_version=$(modinfo -F version "$DBLOCK_KO")
[[ -n $module_version ]] || die "modinfo -F version $DBLOCK_KO printed nothing"
assert_eq "$module_version" "$(cat /sys/module/dblock/version)" "/sys/module/dblock/version"
for tool in "$DBLOCKCTL" "$SERVE" "$SAMPLE"; do
  assert_eq "${tool##*/} (dblock) $module_version" "$("$tool" --version)" "${tool##*/} --version"
done
nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
expect_error "only root may create dblock devices (fix: run it as root" \
  "${nobody[@]}" "$SERVE" notroot --backend null --size 64M
expect_error "only root may create dblock devices (fix: run it as root" \
  "${nobody[@]}" "$SAMPLE" --name notroot
expect_error "only root may create dblock devices (fix: run it as root" \
  "${nobody[@]}" "$DBLOCKCTL" create notroot --size 64M
expect_error "only root may manage dblock devices (fix: run it as root" \
  "${nobody[@]}" "$DBLOCKCTL" list
expect_error "no dblock device has that name or id (fix: dblockctl list shows them)" \
  "$DBLOCKCTL" info nosuch
expect_error "no dblock device has that name or id" "$DBLOCKCTL" destroy 4000

# null: stores nothing, answers at once.
serve_bg srvnull --backend null --size 256M --queues 2 --depth 32
assert_eq $((256 << 20)) "$(blockdev --getsize64 /dev/srvnull)" "size of /dev/srvnull"
dd if=/dev/urandom of=/dev/srvnull bs=1M count=32 oflag=direct status=none
dd if=/dev/srvnull of=/dev/null bs=1M count=32 iflag=direct status=none
expect_error "a dblock device with that name exists (served by pid $SERVE_PID) (fix: choose another name, or remove it: dblockctl destroy srvnull)" \
  "$SERVE" srvnull --backend null --size 64M
expect_error "a dblock device with that name exists (served by pid $SERVE_PID) (fix: choose another name" \
  "$SAMPLE" --name srvnull
expect_error "a dblock device with that name exists (served by pid $SERVE_PID) (fix: choose another name" \
  "$DBLOCKCTL" create srvnull --size 64M
expect_error "it is served by pid $SERVE_PID (fix: let that server hand it over: kill -USR1 $SERVE_PID)" \
  "$SERVE" srvnull --backend null --size 256M --attach
expect_error "no dblock device has that name" "$SERVE" nosuch --backend null --size 64M --attach
expect_usage_error "would serve zeros" "$SERVE" srvnull --backend ram --size 256M --attach
if modprobe loop 2>/dev/null && [[ -e /sys/class/block/loop0 ]]; then
  expect_error "a block device with that name exists, not a dblock one" "$SERVE" loop0 --backend null --size 64M
fi
"$DBLOCKCTL" destroy srvnull
wait_exit "$SERVE_PID" 30
log_has /tmp/serve-srvnull.log "/dev/srvnull was destroyed, exiting"

# file, from a config file: data goes to the file; SIGTERM ends it with 0.
truncate -s 64M /tmp/backing.img
printf '# dblock@srvfile\nname = srvfile\nbackend = "file:/tmp/backing.img"\nqueues=1\ndepth = 16\nmax_io=128K\nread_only=no\n' >/tmp/srvfile.conf
"$SERVE" --config /tmp/srvfile.conf >/tmp/serve-srvfile.log 2>&1 &
SERVE_PID=$!
wait_for_path /dev/srvfile 30
assert_eq $((64 << 20)) "$(blockdev --getsize64 /dev/srvfile)" "size of /dev/srvfile (the file's)"
backend_is srvfile file:/tmp/backing.img
head -c 1M /dev/urandom >/tmp/pattern
dd if=/tmp/pattern of=/dev/srvfile bs=64K seek=16 oflag=direct,sync status=none
cmp -n $((1 << 20)) /tmp/pattern <(dd if=/tmp/backing.img bs=64K skip=16 status=none) ||
  die "the backing file does not hold what was written"
cmp -n $((1 << 20)) /tmp/pattern <(dd if=/dev/srvfile bs=64K skip=16 iflag=direct status=none) ||
  die "reading back through /dev/srvfile differs"
kill -TERM "$SERVE_PID"
wait_exit "$SERVE_PID" 30
wait_gone /dev/srvfile 10
log_has /tmp/serve-srvfile.log "got SIGTERM, destroying /dev/srvfile"

# The command line overrides the config file; read-only.
serve_bg srvro --config /tmp/srvfile.conf --read-only
assert_eq 1 "$(blockdev --getro /dev/srvro)" "read-only flag of /dev/srvro"
if dd if=/tmp/pattern of=/dev/srvro bs=64K count=1 oflag=direct status=none 2>/dev/null; then
  die "a write to a read-only disk succeeded"
fi
kill -INT "$SERVE_PID"
wait_exit "$SERVE_PID" 30

# Takeover: the new server's description replaces the old one, which stays
# while no server is attached; a relative path is described absolute.
ln -f /tmp/backing.img "/tmp/backing 2.img"
serve_bg srvtake --backend file:/tmp/backing.img --recovery wait --grace never
backend_is srvtake file:/tmp/backing.img
first=$SERVE_PID
kill -USR1 "$first"
wait_exit "$first" 30
assert_eq 0 "$(cat /sys/block/srvtake/dblock/server_pid)" "server pid after the handover"
backend_is srvtake file:/tmp/backing.img
cd /tmp || die "cd /tmp"
"$SERVE" srvtake --backend "file:backing 2.img" --attach >/tmp/serve-srvtake2.log 2>&1 &
SERVE_PID=$!
cd / || die "cd /"
deadline=$((SECONDS + 30))
until [[ $(cat /sys/block/srvtake/dblock/server_pid) == "$SERVE_PID" ]]; do
  kill -0 "$SERVE_PID" 2>/dev/null || { cat /tmp/serve-srvtake2.log >&2; die "the second server exited early"; }
  ((SECONDS < deadline)) || die "timed out waiting for the second server"
  sleep 0.1
done
backend_is srvtake "file:/tmp/backing 2.img"
log_has /tmp/serve-srvtake2.log "took over /dev/srvtake (.*; file:/tmp/backing 2.img, "
"$DBLOCKCTL" destroy srvtake
wait_exit "$SERVE_PID" 30

# ram: a file system.
serve_bg srvram --backend ram --size 128M --block-size 4096 --max-io 512K
backend_is srvram ram
mkfs.ext4 -q /dev/srvram
mkdir -p /tmp/mnt
mount /dev/srvram /tmp/mnt
write_files /tmp/mnt/data 10
umount /tmp/mnt
e2fsck -fn /dev/srvram
kill -TERM "$SERVE_PID"
wait_exit "$SERVE_PID" 30
cat /tmp/serve-*.log
unload_dblock
