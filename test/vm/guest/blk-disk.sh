# Scenario blk-disk: the first virtio-blk disk (/dev/vd?). Same kernel
# command line as scsi-disk; no SCSI probing.
. /lib/vhostd/disk-checks.sh

if vm_step disk disk_find 'vd[a-z]'; then
  vm_step size disk_size
  disk_common_steps
fi
