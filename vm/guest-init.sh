#!/bin/sh
# /init of the guest initramfs (busybox sh). Boots into the host's root (9p, read-only),
# runs the job that run-guest.sh left in the OUT share, writes its exit code and the
# guest's dmesg back there, and powers off. Parameters come from the kernel command line:
#   dblockvm_out=HOSTPATH  dblockvm_moddir=HOSTPATH  (no spaces)
#   dblockvm_src=HOSTPATH  (optional: 9p share "src" mounted there, read-only)
#   dblockvm_root=overlay  (optional: the root is a tmpfs overlay on the host's, writable)
#   dblockvm_init=systemd  (optional, with overlay: systemd becomes PID 1 and runs the
#                          job as a service, then powers off; default: chroot from here)
# A failure here leaves no rc file: run-guest.sh reports it as a guest failure.
export PATH=/bin
R=/newroot

fail() { echo "guest-init: $*"; dmesg | tail -n 20; poweroff -f; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

# shellcheck disable=SC2013 # the cmdline is one line of words
for arg in $(cat /proc/cmdline); do
  case $arg in
    dblockvm_out=*) OUT=${arg#*=} ;;
    dblockvm_moddir=*) MODDIR=${arg#*=} ;;
    dblockvm_src=*) SRC=${arg#*=} ;;
    dblockvm_root=*) ROOT=${arg#*=} ;;
    dblockvm_init=*) INIT=${arg#*=} ;;
  esac
done
if [ -z "$OUT" ] || [ -z "$MODDIR" ]; then fail "dblockvm_out/dblockvm_moddir missing on cmdline"; fi

# load_modules LIST: insmod the modules /modules/LIST names, in its order.
load_modules() {
  while read -r ko; do
    insmod "/modules/$ko" || fail "insmod $ko failed"
  done < "/modules/$1"
}
load_modules order

mkdir -p $R
# msize: 9p's default of 8 KiB makes every read a round trip through TCG.
HOST_OPTS=trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose
if [ "$ROOT" = overlay ]; then
  load_modules order.overlay
  mkdir -p /lower /upper
  mount -t 9p -o $HOST_OPTS host /lower || fail "mount host root"
  mount -t tmpfs -o mode=755 tmpfs /upper || fail "mount overlay tmpfs"
  mkdir -p /upper/data /upper/work
  mount -t overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work overlay $R ||
    fail "mount overlay root (has this kernel overlayfs?)"
  # The host may be a container: this guest is not one (systemd would believe it).
  rm -f $R/.dockerenv $R/run/.containerenv
else
  mount -t 9p -o $HOST_OPTS host $R || fail "mount host root"
fi
mount -t tmpfs -o mode=1777 tmpfs $R/tmp
mount -t tmpfs -o mode=755 tmpfs $R/run
mount -t proc proc $R/proc
mount -t sysfs sysfs $R/sys
mount -t devtmpfs devtmpfs $R/dev
mkdir -p $R/dev/pts $R/dev/shm
# devtmpfs lacks what udev would add; bash's <(...) needs /dev/fd.
ln -sf /proc/self/fd $R/dev/fd
ln -sf /proc/self/fd/0 $R/dev/stdin
ln -sf /proc/self/fd/1 $R/dev/stdout
ln -sf /proc/self/fd/2 $R/dev/stderr
mount -t devpts -o newinstance,ptmxmode=0666 devpts $R/dev/pts
mount -t tmpfs -o mode=1777 tmpfs $R/dev/shm
mount -t configfs configfs $R/sys/kernel/config 2>/dev/null
mount -t debugfs debugfs $R/sys/kernel/debug 2>/dev/null
# The host may have its own /lib/modules; show the guest kernel's tree instead.
mount --bind "$R${MODDIR%/*}" "$R/usr/lib/modules" || fail "bind modules"
# OUT may sit under the host's /tmp, which is the fresh tmpfs here.
mkdir -p "$R$OUT" 2>/dev/null
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 out "$R$OUT" || fail "mount out share"
# The checkout, read-only, at its host path: always for foreign guests
# (vm/run-foreign-guest.sh), for amd64 ones when it lives under the host's /tmp.
if [ -n "$SRC" ]; then
  mkdir -p "$R$SRC" 2>/dev/null
  mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose src "$R$SRC" ||
    fail "mount src share at $SRC"
fi

ip link set lo up
hostname dblock-guest

if [ "$INIT" = systemd ]; then
  [ "$ROOT" = overlay ] || fail "dblockvm_init=systemd needs dblockvm_root=overlay"
  # systemd keeps the API file systems mounted here (/run too, with the units).
  # The job is a service of the target systemd boots to; its wrapper records the
  # exit code and the kernel log in OUT, and the unit then powers off at once.
  mkdir -p $R/run/systemd/system
  cat > $R/run/dblock-guest-job.sh <<JOB
#!/bin/sh
exec </dev/null >/dev/console 2>&1
/usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  HOME=/root TERM=dumb LANG=C.UTF-8 DBLOCK_GUEST_KVER=\$(uname -r) DBLOCK_OUT="$OUT" \
  DBLOCK_GUEST_INIT=systemd /bin/bash "$OUT/.guest-job.sh"
echo \$? > "$OUT/.guest-rc"
dmesg > "$OUT/dmesg.txt"
sync
JOB
  cat > $R/run/systemd/system/dblock-guest.target <<UNIT
[Unit]
Description=dblock guest: the job, then power off
Requires=sysinit.target dblock-guest-job.service
After=sysinit.target dblock-guest-job.service
AllowIsolate=yes
UNIT
  cat > $R/run/systemd/system/dblock-guest-job.service <<UNIT
[Unit]
Description=dblock guest job
After=sysinit.target systemd-udevd.service
SuccessAction=poweroff-immediate
FailureAction=poweroff-immediate
[Service]
Type=oneshot
ExecStart=/bin/sh /run/dblock-guest-job.sh
TimeoutStartSec=infinity
UNIT
  exec switch_root $R /lib/systemd/systemd
fi

chroot $R /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  HOME=/root TERM=dumb LANG=C.UTF-8 DBLOCK_GUEST_KVER="$(uname -r)" DBLOCK_OUT="$OUT" \
  /bin/bash "$OUT/.guest-job.sh" </dev/null
echo $? > "$R$OUT/.guest-rc"

dmesg > "$R$OUT/dmesg.txt"
sync
umount "$R$OUT"
poweroff -f
