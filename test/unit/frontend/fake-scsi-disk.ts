// A one-LUN virtio-scsi disk behind either fake ring device, for scsi driver tests.
import * as C from '../../../src/frontend/scsi-cdb.ts';
import { writeTo, type AnyHandler } from './fake-devices.ts';

function be32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

/** A one-LUN disk (target 0 LUN 0) behind the fake ring device; LUN 5 answers TEST UNIT READY with CHECK CONDITION. */
export function scsiDisk(disk: Uint8Array): AnyHandler {
  return (c, dev) => {
    const hdr = c.out.subarray(0, 51);
    const cdb = hdr.subarray(19);
    const dataOut = c.out.subarray(51);
    const resp = new Uint8Array(108);
    const rv = new DataView(resp.buffer);
    let dataIn = new Uint8Array(0);
    switch (cdb[0]) {
      case C.READ_10: {
        const lba = be32(cdb, 2);
        const blocks = (cdb[7] << 8) | cdb[8];
        dataIn = disk.slice(lba * 512, (lba + blocks) * 512);
        break;
      }
      case C.WRITE_10:
        disk.set(dataOut, be32(cdb, 2) * 512);
        break;
      case C.INQUIRY: {
        dataIn = new Uint8Array(36);
        dataIn.set([0, 0, 6, 2, 31]);
        rv.setUint32(4, ((cdb[3] << 8) | cdb[4]) - 36, true);
        break;
      }
      case C.TEST_UNIT_READY:
        if (hdr[3] === 5) {
          rv.setUint32(0, 18, true);
          resp[10] = C.SAM_STAT_CHECK_CONDITION;
          resp.set([0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x25, 0x00], 12);
        }
        break;
    }
    writeTo(dev, c, 0, resp);
    writeTo(dev, c, 108, dataIn);
    return 108 + dataIn.length;
  };
}
