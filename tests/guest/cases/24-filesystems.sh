#!/bin/bash
# ext4, XFS and btrfs on a file-backed and a RAM-backed device: a workload
# of thousands of files with renames, deletes and fsync, fstrim whose
# discards reach the backend (the backing file's allocation shrinks),
# unmount, and each filesystem's own check.
# dblock-transports: dblock ublk
# dblock-timeout: 900
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../dblock-lib.sh"

workload() {
  local dir=$1 i moved=() removed=()
  mkdir -p "$dir/a" "$dir/b"
  # Builtins only in the loop: a process per file is slow under emulation.
  for ((i = 0; i < 3000; i++)); do
    printf 'file %d %s\n%*s\n' "$i" "$RANDOM" $((i % 13 * 300)) x >"$dir/a/f$i"
    ((i % 2)) || moved+=("$dir/a/f$i")
    ((i % 4 != 1)) || removed+=("$dir/a/f$i")
  done
  mv "${moved[@]}" "$dir/b/"
  rm "${removed[@]}"
  mv "$dir/b" "$dir/renamed"
  # Written, then deleted: what fstrim must give back.
  dd if=/dev/urandom of="$dir/big" bs=1M count=64 conv=fsync status=none
  rm "$dir/big"
  (cd "$dir" && find . -type f -print0 | sort -z | xargs -0 sha256sum >/tmp/fs-sums)
  sync
}

check_fs() { # FS DEV
  case $1 in
  ext4) e2fsck -fn "$2" ;;
  xfs) xfs_repair -n "$2" ;;
  btrfs) btrfs check --readonly "$2" ;;
  esac
}

mkfs_fs() { # FS DEV
  case $1 in
  ext4) mkfs.ext4 -q "$2" ;;
  xfs) mkfs.xfs -q -f "$2" ;;
  btrfs) mkfs.btrfs -q -f "$2" ;;
  esac
}

load_dblock
mkdir -p /tmp/fsm
for fs in ext4 xfs btrfs; do
  command -v "mkfs.$fs" >/dev/null || die "mkfs.$fs is not installed"
  for backend in file ram; do
    name=fs-$fs-$backend
    log "$fs on the $backend backend"
    if [[ $backend == file ]]; then
      rm -f /tmp/$name.img
      truncate -s 512M /tmp/$name.img
      start_serve "$name" --backend file:/tmp/$name.img
    else
      start_serve "$name" --backend ram --size 512M
    fi
    mkfs_fs $fs /dev/$name
    mount /dev/$name /tmp/fsm
    workload /tmp/fsm
    discards_before=$(discards_done "$name")
    [[ $backend == file ]] && alloc_before=$(allocated_bytes /tmp/$name.img)
    fstrim -v /tmp/fsm
    discards_after=$(discards_done "$name")
    ((discards_after > discards_before)) || die "$name: fstrim sent no discard to the server"
    if [[ $backend == file ]]; then
      alloc_after=$(allocated_bytes /tmp/$name.img)
      log "$name: backing file allocation $alloc_before -> $alloc_after bytes"
      ((alloc_after + (32 << 20) < alloc_before)) || die "$name: fstrim did not shrink the backing file"
    fi
    umount /tmp/fsm
    check_fs $fs /dev/$name
    mount /dev/$name /tmp/fsm
    (cd /tmp/fsm && sha256sum --quiet -c /tmp/fs-sums) || die "$name: files changed after remount"
    umount /tmp/fsm
    "$DBLOCKCTL" destroy "$name"
    wait_exit "$SERVE_PID" 30
    rm -f /tmp/$name.img
  done
done
unload_dblock
