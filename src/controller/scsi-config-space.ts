// The virtio-scsi config space a vhost-user front-end may read with GET_CONFIG. QEMU keeps its
// own for vhost-user-scsi; other front-ends ask us, so the values match QEMU's.
export const SCSI_SEG_MAX = 126;
export const SCSI_CMD_PER_LUN = 128;

export function scsiConfigSpace(requestQueues: number): Uint8Array {
  const b = new Uint8Array(36);
  const v = new DataView(b.buffer);
  v.setUint32(0, requestQueues, true); // num_queues
  v.setUint32(4, SCSI_SEG_MAX, true); // seg_max
  v.setUint32(8, 0xffff, true); // max_sectors
  v.setUint32(12, SCSI_CMD_PER_LUN, true); // cmd_per_lun
  v.setUint32(16, 16, true); // event_info_size
  v.setUint32(20, 96, true); // sense_size
  v.setUint32(24, 32, true); // cdb_size
  v.setUint16(28, 0, true); // max_channel
  v.setUint16(30, 255, true); // max_target
  v.setUint32(32, 16383, true); // max_lun
  return b;
}
