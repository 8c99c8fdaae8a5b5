// A RAM disk behind a fake ring device (split or packed) for virtio-blk driver tests: decodes the
// request from the chain's readable bytes and answers in its writable bytes, status byte last.
import * as B from '../../../src/frontend/virtio-blk-wire.ts';
import { writeTo, type AnyHandler } from './fake-devices.ts';

export interface BlkDiskLog {
  type: number;
  reserved: number;
  sector: number;
  segments: { sector: number; numSectors: number; flags: number }[];
}

/** disk: the backing bytes; log gets each decoded request. Unknown types answer UNSUPP. */
export function blkDisk(disk: Uint8Array, log: BlkDiskLog[] = [], serial = 'vhostd-serial-0001'): AnyHandler {
  return (c, dev) => {
    const v = new DataView(c.out.buffer, c.out.byteOffset, c.out.byteLength);
    const type = v.getUint32(0, true);
    const reserved = v.getUint32(4, true);
    const sector = Number(v.getBigUint64(8, true));
    const dataOut = c.out.subarray(B.VIRTIO_BLK_OUTHDR_SIZE);
    const inLen = c.writable.reduce((a, s) => a + s.len, 0) - 1;
    const entry: BlkDiskLog = { type, reserved, sector, segments: [] };
    log.push(entry);
    let dataIn = new Uint8Array(0);
    let status = B.VIRTIO_BLK_S_OK;
    switch (type) {
      case B.VIRTIO_BLK_T_IN:
        dataIn = disk.slice(sector * 512, sector * 512 + inLen);
        break;
      case B.VIRTIO_BLK_T_OUT:
        disk.set(dataOut, sector * 512);
        break;
      case B.VIRTIO_BLK_T_FLUSH:
        break;
      case B.VIRTIO_BLK_T_GET_ID:
        dataIn = new Uint8Array(B.VIRTIO_BLK_ID_BYTES);
        for (let i = 0; i < serial.length && i < dataIn.length; i++) dataIn[i] = serial.charCodeAt(i);
        break;
      case B.VIRTIO_BLK_T_DISCARD:
      case B.VIRTIO_BLK_T_WRITE_ZEROES:
        for (let o = 0; o + 16 <= dataOut.length; o += 16) {
          const sv = new DataView(dataOut.buffer, dataOut.byteOffset + o, 16);
          const s = { sector: Number(sv.getBigUint64(0, true)), numSectors: sv.getUint32(8, true), flags: sv.getUint32(12, true) };
          entry.segments.push(s);
          disk.fill(type === B.VIRTIO_BLK_T_DISCARD ? 0xdd : 0, s.sector * 512, (s.sector + s.numSectors) * 512);
        }
        break;
      default:
        status = B.VIRTIO_BLK_S_UNSUPP;
    }
    writeTo(dev, c, 0, dataIn);
    writeTo(dev, c, inLen, new Uint8Array([status]));
    return dataIn.length + 1;
  };
}
