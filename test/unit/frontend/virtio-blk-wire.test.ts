import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as B from '../../../src/frontend/virtio-blk-wire.ts';
import { parseBlkConfig } from '../../../src/frontend/virtio-blk-config.ts';
import { VirtioBlkError } from '../../../src/frontend/virtio-blk-error.ts';

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

function bytes(h: string): Uint8Array {
  return new Uint8Array(Buffer.from(h.replace(/\s+/g, ''), 'hex'));
}

// The 57 bytes QEMU's vhost-user-blk reads: capacity 0x1_0000_0010 sectors, size_max 64 KiB,
// seg_max 126, geometry 0x1234/16/63, blk_size 4096, topology 3/1/8/256, wce 1, 4 queues,
// discard 0x3fffff/1/8, write zeroes 0x3fffff/1/may unmap.
const CONFIG_57 = bytes(`
  1000000001000000 00000100 7e000000 3412103f 00100000
  0301 0800 00010000 01 00 0400
  ffff3f00 01000000 08000000
  ffff3f00 01000000 01`);

test('request header and discard / write-zeroes segments: exact little-endian bytes', () => {
  const h = new Uint8Array(16);
  B.putBlkOutHdr(h, 0, B.VIRTIO_BLK_T_OUT, 0x1_2345_6789);
  assert.equal(hex(h), '01000000' + '00000000' + '8967452301000000');
  B.putBlkOutHdr(h, 0, 0xdeadbeef, 0, 7);
  assert.equal(hex(h), 'efbeadde' + '07000000' + '0000000000000000');
  const s = new Uint8Array(32);
  assert.equal(B.putBlkSegments(s, 0, [{ sector: 8, numSectors: 16 }, { sector: 0x1_0000_0000, numSectors: 1, flags: 1 }]), 32);
  assert.equal(hex(s), '0800000000000000' + '10000000' + '00000000' + '0000000001000000' + '01000000' + '01000000');
  B.putBlkSegments(s, 0, [{ sector: 1, numSectors: 2, flags: 1 }], 0); // override clears the unmap flag
  assert.equal(hex(s.subarray(0, 16)), '0100000000000000' + '02000000' + '00000000');
  assert.equal(B.decodeBlkId(new Uint8Array([0x76, 0x68, 0x6f, 0x73, 0x74, 0, 0x41])), 'vhost');
  assert.equal(B.decodeBlkId(new Uint8Array(20).fill(0x5a)), 'Z'.repeat(20));
});

test('config: every field of the 57-byte layout', () => {
  assert.equal(CONFIG_57.length, 57);
  const c = parseBlkConfig(CONFIG_57);
  assert.deepEqual(c, {
    length: 57,
    capacity: 0x1_0000_0010,
    capacityBig: 0x1_0000_0010n,
    sizeMax: 65536,
    segMax: 126,
    geometry: { cylinders: 0x1234, heads: 16, sectors: 63 },
    blkSize: 4096,
    topology: { physicalBlockExp: 3, alignmentOffset: 1, minIoSize: 8, optIoSize: 256 },
    writeback: 1,
    numQueues: 4,
    discard: { maxSectors: 0x3fffff, maxSeg: 1, sectorAlignment: 8 },
    writeZeroes: { maxSectors: 0x3fffff, maxSeg: 1, mayUnmap: 1 },
    secureErase: null,
    zoned: null,
  });
});

test('config: shorter layouts leave the later groups null; longer ones add secure erase and zoned', () => {
  const c36 = parseBlkConfig(CONFIG_57.subarray(0, 36));
  assert.deepEqual([c36.numQueues, c36.discard, c36.writeZeroes], [4, null, null]);
  const c48 = parseBlkConfig(CONFIG_57.subarray(0, 48));
  assert.deepEqual([c48.discard?.sectorAlignment, c48.writeZeroes], [8, null]);
  const big = new Uint8Array(96);
  big.set(CONFIG_57);
  const v = new DataView(big.buffer);
  v.setUint32(60, 100, true);
  v.setUint32(64, 2, true);
  v.setUint32(68, 4, true);
  v.setUint32(72, 0x80000, true);
  v.setUint32(76, 14, true);
  v.setUint32(80, 15, true);
  v.setUint32(84, 256, true);
  v.setUint32(88, 8, true);
  big[92] = 2;
  const c96 = parseBlkConfig(big);
  assert.deepEqual(c96.secureErase, { maxSectors: 100, maxSeg: 2, sectorAlignment: 4 });
  assert.deepEqual(c96.zoned, { zoneSectors: 0x80000, maxOpenZones: 14, maxActiveZones: 15, maxAppendSectors: 256, writeGranularity: 8, model: 2 });
  // A capacity above 2^53 stays exact in capacityBig.
  const huge = CONFIG_57.slice();
  new DataView(huge.buffer).setBigUint64(0, 0xffff_ffff_ffff_fff0n, true);
  assert.equal(parseBlkConfig(huge).capacityBig, 0xffff_ffff_ffff_fff0n);
  assert.throws(() => parseBlkConfig(CONFIG_57.subarray(0, 35)), (e: unknown) => e instanceof VirtioBlkError && e.code === 'BAD_CONFIG');
});
