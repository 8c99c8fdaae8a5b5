# Scenario blk-resize: the disk starts at vhostd.size_sectors; the host grows
# the bdev while the guest runs; the new size (vhostd.new_size_sectors) must
# show in /sys/block/vdX/size without a reboot.
. /lib/vhostd/disk-checks.sh

blk_wait_resize() {
  vm_want=$(vm_param new_size_sectors '')
  vm_tries=0
  while [ $vm_tries -lt 1200 ]; do
    vm_have=$(cat "/sys/block/$DISK/size")
    if [ "$vm_have" = "$vm_want" ]; then
      DETAIL="size_sectors=$vm_have after $((vm_tries / 10)).$((vm_tries % 10))s"
      dd if="$DEV" of=/dev/null bs=512 count=1 skip=$((vm_want - 1)) iflag=direct || vm_fail "cannot read the new last sector" || return 1
      return 0
    fi
    sleep 0.1
    vm_tries=$((vm_tries + 1))
  done
  vm_fail "size_sectors=$vm_have after 120s, expected $vm_want"
}

if vm_step disk disk_find 'vd[a-z]'; then
  vm_step size disk_size && vm_step resized blk_wait_resize
fi
