// QEMU arguments attaching a vhost-user controller socket as a blk or scsi device.

/** `chardevOptions`: more socket options, e.g. reconnect (leading comma not included). */
export function vhostUserBlkArgs(id: string, socket: string, numQueues: number, chardevOptions = ''): string[] {
  return ['-chardev', chardev(id, socket, chardevOptions), '-device', `vhost-user-blk-pci,chardev=${id},num-queues=${numQueues},queue-size=128`];
}

export function vhostUserScsiArgs(id: string, socket: string, numQueues: number, chardevOptions = ''): string[] {
  return ['-chardev', chardev(id, socket, chardevOptions), '-device', `vhost-user-scsi-pci,chardev=${id},num_queues=${numQueues},virtqueue_size=128`];
}

function chardev(id: string, socket: string, options: string): string {
  return `socket,id=${id},path=${socket}${options === '' ? '' : `,${options}`}`;
}
