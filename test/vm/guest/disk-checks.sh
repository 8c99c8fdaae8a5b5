# Checks any block disk must pass, sourced by the scenarios (POSIX sh, busybox).
# They share DISK (e.g. sda) and DEV (/dev/sda), set by disk_find.

# disk_find GLOB: wait for the first /sys/block/GLOB with a device node.
# Drivers probe asynchronously after insmod; TCG makes that slow.
disk_find() {
  vm_tries=0
  while [ $vm_tries -lt 300 ]; do
    for vm_b in /sys/block/$1; do
      if [ -e "$vm_b" ] && [ -b "/dev/${vm_b##*/}" ] && [ "$(cat "$vm_b/size")" != 0 ]; then
        DISK=${vm_b##*/}
        DEV=/dev/$DISK
        DETAIL="dev=$DEV after $((vm_tries / 10)).$((vm_tries % 10))s"
        return 0
      fi
    done
    sleep 0.1
    vm_tries=$((vm_tries + 1))
  done
  vm_fail "no /sys/block/$1 after 30s; block devices: $(ls /sys/block | tr '\n' ' ')"
}

# disk_size: the size in 512-byte sectors is vhostd.size_sectors.
disk_size() {
  vm_want=$(vm_param size_sectors '')
  vm_have=$(cat "/sys/block/$DISK/size")
  [ -n "$vm_want" ] || vm_fail "vhostd.size_sectors= missing from the kernel command line" || return 1
  [ "$vm_have" = "$vm_want" ] || vm_fail "size_sectors=$vm_have, expected $vm_want" || return 1
  DETAIL="size_sectors=$vm_have logical_block=$(cat "/sys/block/$DISK/queue/logical_block_size")"
}

# disk_discard: blkdiscard on the raw device. With DISCARD_ZEROES=1 (the
# device promised zeroes after unmap, e.g. SCSI LBPRZ) the data must read back
# as zeroes.
disk_discard() {
  vm_max=$(cat "/sys/block/$DISK/queue/discard_max_bytes")
  [ "$vm_max" -gt 0 ] || vm_fail "discard_max_bytes=0: the device offers no discard" || return 1
  dd if=/dev/urandom of="$DEV" bs=64k count=16 iflag=fullblock oflag=direct conv=fsync ||
    vm_fail "writing the pattern before discard failed" || return 1
  blkdiscard -f "$DEV" || vm_fail "blkdiscard $DEV failed: $(tail -n 1 /tmp/log/blkdiscard.log)" || return 1
  DETAIL="discard_max_bytes=$vm_max"
  if [ "${DISCARD_ZEROES:-0}" = 1 ]; then
    dd if=/dev/zero of=/tmp/zero-1m bs=64k count=16
    dd if="$DEV" of=/tmp/after-discard bs=64k count=16 iflag=direct ||
      vm_fail "read after discard failed" || return 1
    cmp /tmp/zero-1m /tmp/after-discard || vm_fail "LBPRZ=1 but the first MiB is not zero after discard" || return 1
    DETAIL="$DETAIL, first MiB reads back zero"
  fi
}

disk_mkfs() {
  mkfs.ext4 -q -F "$DEV" || vm_fail "mkfs.ext4 $DEV failed: $(tail -n 1 /tmp/log/mkfs.log)" || return 1
  DETAIL="ext4 on $DEV"
}

disk_mount() {
  mkdir -p /mnt
  mount -t ext4 "$DEV" /mnt || vm_fail "mount $DEV failed" || return 1
  DETAIL="$(df -k /mnt | tail -n 1 | awk '{ print "size=" $2 "KiB used=" $3 "KiB" }')"
}

# disk_write_files: random files of different sizes, their md5s kept in /tmp.
disk_write_files() {
  vm_kib=0
  for vm_i in 1 2 3 4; do
    dd if=/dev/urandom of=/mnt/file$vm_i bs=64k count=$((vm_i * 8)) iflag=fullblock ||
      vm_fail "writing /mnt/file$vm_i failed" || return 1
    vm_kib=$((vm_kib + vm_i * 512))
  done
  md5sum /mnt/file1 /mnt/file2 /mnt/file3 /mnt/file4 > /tmp/files.md5
  sync
  DETAIL="4 files, ${vm_kib}KiB"
}

# disk_remount_verify: drop every cache so the md5s are computed from the disk.
disk_remount_verify() {
  umount /mnt || vm_fail "umount failed" || return 1
  echo 3 > /proc/sys/vm/drop_caches
  mount -t ext4 "$DEV" /mnt || vm_fail "second mount failed" || return 1
  md5sum -c /tmp/files.md5 || vm_fail "md5 mismatch after remount: $(grep -v ': OK' /tmp/log/remount-verify.log | tr '\n' ' ')" || return 1
  DETAIL="$(wc -l < /tmp/files.md5) md5s match"
}

disk_fstrim() {
  vm_out=$(fstrim -v /mnt) || vm_fail "fstrim /mnt failed: $vm_out" || return 1
  DETAIL=$vm_out
}

disk_umount() {
  umount /mnt || vm_fail "umount failed" || return 1
  DETAIL="clean"
}

# fio over the raw device; the verify pass re-reads what the write pass wrote
# (same seed, so the same offsets) and checks each block's crc32c and offset.
disk_fio() {
  vm_mode=$1
  vm_size=$(vm_param fio_size 32M)
  set -- --name=vhostd --filename="$DEV" --rw=randwrite --bs=4k --iodepth=16 \
    --ioengine=libaio --direct=1 --verify=crc32c --size="$vm_size"
  if [ "$vm_mode" = write ]; then
    fio "$@" --do_verify=0 > /tmp/fio-$vm_mode.out 2>&1
  else
    fio "$@" --verify_only > /tmp/fio-$vm_mode.out 2>&1
  fi
  vm_rc=$?
  cat /tmp/fio-$vm_mode.out
  [ $vm_rc -eq 0 ] || vm_fail "fio $vm_mode exited $vm_rc: $(grep -iE 'error|bad|verify' /tmp/fio-$vm_mode.out | head -n 3)" || return 1
  DETAIL="size=$vm_size $(grep -oE '(read|write): IOPS=[^,]*' /tmp/fio-$vm_mode.out | head -n 1)"
}

# disk_marker: write "VHOSTD-MARKER <vhostd.marker>" in the 512-byte sector
# vhostd.marker_lba, so the host can tell which VM's data landed in which
# backing store. Written last: the other steps overwrite the disk.
disk_marker() {
  vm_marker=$(vm_param marker '')
  vm_lba=$(vm_param marker_lba 2048)
  [ -n "$vm_marker" ] || { DETAIL="no vhostd.marker given, nothing written"; return 0; }
  printf 'VHOSTD-MARKER %s\n' "$vm_marker" > /tmp/marker.txt
  dd if=/tmp/marker.txt of=/tmp/marker.blk bs=512 count=1 conv=sync
  dd if=/tmp/marker.blk of="$DEV" bs=512 seek="$vm_lba" count=1 oflag=direct conv=fsync ||
    vm_fail "writing the marker at LBA $vm_lba failed" || return 1
  dd if="$DEV" of=/tmp/marker.back bs=512 skip="$vm_lba" count=1 iflag=direct ||
    vm_fail "reading the marker back failed" || return 1
  cmp /tmp/marker.blk /tmp/marker.back || vm_fail "marker read back differs" || return 1
  DETAIL="marker=$vm_marker lba=$vm_lba"
}

# disk_common_steps: everything after the device-specific probing.
# vhostd.discard=0: the device offers no discard; skip blkdiscard and fstrim.
disk_common_steps() {
  vm_discard=$(vm_param discard 1)
  [ "$vm_discard" = 0 ] || vm_step blkdiscard disk_discard
  if vm_step mkfs disk_mkfs && vm_step mount disk_mount; then
    vm_step write-files disk_write_files && vm_step remount-verify disk_remount_verify
    [ "$vm_discard" = 0 ] || vm_step fstrim disk_fstrim
    vm_step umount disk_umount
  fi
  vm_step fio-write disk_fio write && vm_step fio-verify disk_fio verify
  vm_step marker disk_marker
}

# disk_feature: every virtio device negotiated feature bit vhostd.feature= (the
# VMs have no other virtio devices), e.g. 34 = VIRTIO_F_RING_PACKED.
disk_feature() {
  vm_bit=$(vm_param feature '')
  vm_n=0
  for vm_f in /sys/bus/virtio/devices/*/features; do
    [ "$(cut -c$((vm_bit + 1)) "$vm_f")" = 1 ] || vm_fail "$vm_f: bit $vm_bit not negotiated ($(cat "$vm_f"))" || return 1
    vm_n=$((vm_n + 1))
  done
  [ $vm_n -gt 0 ] || vm_fail "no virtio devices" || return 1
  DETAIL="bit $vm_bit on $vm_n virtio device(s)"
}
