# Scenario blk-disk: the first virtio-blk disk (/dev/vd?). Same kernel
# command line as scsi-disk; no SCSI probing. With vhostd.lbs= set, the queue
# limits the driver derived from the config space are checked too.
. /lib/vhostd/disk-checks.sh

# blk_limits: logical/physical block size and discard limits in /sys/block/vdX/queue.
blk_limits() {
  q=/sys/block/$DISK/queue
  for vm_pair in "logical_block_size:$(vm_param lbs '')" "physical_block_size:$(vm_param pbs '')" \
    "discard_max_bytes:$(vm_param dmax '')" "discard_granularity:$(vm_param dgran '')" "nr_requests:" ; do
    vm_key=${vm_pair%%:*}
    vm_want=${vm_pair#*:}
    vm_have=$(cat "$q/$vm_key")
    DETAIL="$DETAIL$vm_key=$vm_have "
    [ -z "$vm_want" ] || [ "$vm_have" = "$vm_want" ] || vm_fail "$vm_key=$vm_have, expected $vm_want" || return 1
  done
  DETAIL="${DETAIL}mq=$(ls /sys/block/$DISK/mq | wc -l)"
  vm_mq=$(vm_param mq '')
  [ -z "$vm_mq" ] || [ "$(ls /sys/block/$DISK/mq | wc -l)" = "$vm_mq" ] || vm_fail "$(ls /sys/block/$DISK/mq | wc -l) hardware queues, expected $vm_mq" || return 1
}

if vm_step disk disk_find 'vd[a-z]'; then
  vm_step size disk_size
  [ -z "$(vm_param feature '')" ] || vm_step feature disk_feature
  [ -z "$(vm_param lbs '')" ] || vm_step queue-limits blk_limits
  disk_common_steps
fi
