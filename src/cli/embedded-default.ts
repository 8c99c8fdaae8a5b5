// The configuration vhostd starts with when given none: a RAM disk behind a vhost-user-scsi socket.
export const DEFAULT_BDEV = 'Malloc0';
export const DEFAULT_CTRLR = 'vhost.0';
export const DEFAULT_SIZE_MIB = 256;
export const DEFAULT_BLOCK_SIZE = 512;

export function defaultConfigCalls(sizeMiB: number): { method: string; params: Record<string, unknown> }[] {
  return [
    { method: 'bdev_malloc_create', params: { name: DEFAULT_BDEV, num_blocks: (sizeMiB * 1024 * 1024) / DEFAULT_BLOCK_SIZE, block_size: DEFAULT_BLOCK_SIZE } },
    { method: 'vhost_create_scsi_controller', params: { ctrlr: DEFAULT_CTRLR } },
    { method: 'vhost_scsi_controller_add_target', params: { ctrlr: DEFAULT_CTRLR, scsi_target_num: 0, bdev_name: DEFAULT_BDEV } },
  ];
}

/** The QEMU command line that attaches a VM to a vhost-user-scsi socket. */
export function qemuCommandLine(socketPath: string, memMiB = 1024): string {
  return [
    'qemu-system-x86_64 -machine q35,accel=kvm:tcg -smp 2 -m ' + memMiB + 'M \\',
    `  -object memory-backend-memfd,id=mem,size=${memMiB}M,share=on -numa node,memdev=mem \\`,
    `  -chardev socket,id=vhost0,path=${socketPath} \\`,
    '  -device vhost-user-scsi-pci,chardev=vhost0,num_queues=1 \\',
    '  -drive file=YOUR-BOOT-DISK.qcow2,if=virtio   # or -kernel/-initrd; the vhostd disk appears as /dev/sdX',
  ].join('\n');
}
