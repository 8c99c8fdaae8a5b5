# Scenario blk-readonly: a read-only virtio-blk disk is read-only for the
# guest (ro flag), refuses writes even with O_DIRECT, and reads fine.
. /lib/vhostd/disk-checks.sh

blk_ro_flag() {
  vm_ro=$(cat "/sys/block/$DISK/ro")
  DETAIL="ro=$vm_ro"
  [ "$vm_ro" = 1 ] || vm_fail "ro=$vm_ro, expected 1"
}

blk_write_refused() {
  if dd if=/dev/zero of="$DEV" bs=4k count=1 oflag=direct 2>&1; then
    vm_fail "a write to $DEV succeeded"
    return 1
  fi
  DETAIL="write refused"
}

blk_read_ok() {
  dd if="$DEV" of=/dev/null bs=64k count=64 iflag=direct || vm_fail "read failed" || return 1
  DETAIL="read 4MiB"
}

if vm_step disk disk_find 'vd[a-z]'; then
  vm_step size disk_size
  vm_step ro-flag blk_ro_flag
  vm_step write-refused blk_write_refused
  vm_step read blk_read_ok
fi
