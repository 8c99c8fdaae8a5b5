import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32c } from '../../../src/blob/crc32c.ts';
import { Bitmap } from '../../../src/blob/bitmap.ts';
import { computeLayout, BS_PAGE_SIZE, BS_VERSION, maskPages } from '../../../src/blob/blobstore-layout.ts';
import { decodeSuperBlock, encodeSuperBlock, SB_CLEAN_OFFSET, SB_CRC_OFFSET, SB_VERSION_OFFSET } from '../../../src/blob/super-block.ts';
import { decodeMaskRegion, encodeMaskRegion } from '../../../src/blob/mask-region.ts';
import {
  decodeBlobMd, encodeBlobMd, extentRuns, MD_DESC_EXTENT_RLE, MD_DESC_FLAGS, PENDING_NONE, PENDING_SNAPSHOT_OF, type BlobMd,
} from '../../../src/blob/blob-md-codec.ts';
import { MD_PAGE_CRC_OFFSET, mdPageCrcValid, readMdPageHeader, sealMdPage } from '../../../src/blob/md-page.ts';
import { code } from './ram-blobstore.ts';

test('crc32c matches the Castagnoli check value', () => {
  assert.equal(crc32c(new TextEncoder().encode('123456789')), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
});

test('bitmap: set/clear/findFirstClear/count, bits past the length are ignored', () => {
  const b = new Bitmap(20);
  for (let i = 0; i < 10; i++) b.set(i);
  assert.equal(b.findFirstClear(), 10);
  b.clear(3);
  assert.equal(b.findFirstClear(), 3);
  assert.equal(b.findFirstClear(4), 10);
  assert.equal(b.countSet(), 9);
  assert.deepEqual([...b.bits], [0xf7, 0x03, 0x00]);
  const full = new Bitmap(10, new Uint8Array([0xff, 0xff]));
  assert.equal(full.countSet(), 10, 'the 6 bits beyond length 10 are masked off');
  assert.equal(full.findFirstClear(), -1);
  assert.throws(() => b.set(20), code('OUT_OF_RANGE'));
});

test('layout of a 4 MiB device with 16 KiB clusters and 32 metadata pages', () => {
  const L = computeLayout(4 * 1024 * 1024, 16384, 32);
  assert.deepEqual(L, {
    sizeBytes: 4194304, clusterSize: 16384, totalClusters: 256,
    usedPageMaskStart: 1, usedPageMaskLen: 1, usedClusterMaskStart: 2, usedClusterMaskLen: 1,
    usedBlobIdMaskStart: 3, usedBlobIdMaskLen: 1, mdStart: 4, mdLen: 32, reservedClusters: 9,
  });
  assert.equal(maskPages(8 * (4096 - 16)), 1);
  assert.equal(maskPages(8 * (4096 - 16) + 1), 2);
  assert.throws(() => computeLayout(64 * 1024, 16384, 32), code('DEVICE_TOO_SMALL'));
});

test('super block round-trips; signature, crc and version are checked', () => {
  const layout = computeLayout(4 * 1024 * 1024, 16384, 32);
  const uuid = Uint8Array.from({ length: 16 }, (_, i) => i);
  const page = encodeSuperBlock({ version: BS_VERSION, clean: true, superBlobId: 2 ** 32 + 5, layout, bstype: 'LVOLSTORE', uuid });
  assert.equal(page.length, BS_PAGE_SIZE);
  assert.deepEqual([...page.subarray(0, 8)], [...new TextEncoder().encode('VHDBLOBS')]);
  assert.equal(page[SB_CLEAN_OFFSET], 1);
  const { sb, stored } = decodeSuperBlock(page);
  assert.equal(sb.clean, true);
  assert.equal(sb.superBlobId, 2 ** 32 + 5);
  assert.equal(sb.bstype, 'LVOLSTORE');
  assert.deepEqual([...sb.uuid], [...uuid]);
  assert.equal(stored.clusterSize, 16384);
  assert.equal(stored.fields.mdStart, 4);

  const flipped = page.slice();
  flipped[200] ^= 1;
  assert.throws(() => decodeSuperBlock(flipped), code('BAD_CHECKSUM'));
  const unsigned = page.slice();
  unsigned[0] = 0x41;
  assert.throws(() => decodeSuperBlock(unsigned), code('BAD_SUPER'));
  const v2 = page.slice();
  const dv = new DataView(v2.buffer);
  dv.setUint32(SB_VERSION_OFFSET, 2, true);
  dv.setUint32(SB_CRC_OFFSET, crc32c(v2, 0, SB_CRC_OFFSET), true);
  assert.throws(() => decodeSuperBlock(v2), (e: unknown) => code('BAD_SUPER')(e) && /version 2/.test((e as Error).message));
});

test('mask regions round-trip and detect corruption', () => {
  const bm = new Bitmap(100);
  [0, 7, 8, 99].forEach((i) => bm.set(i));
  const region = encodeMaskRegion(2, bm, 1);
  assert.equal(region[0], 2);
  assert.equal(new DataView(region.buffer).getUint32(4, true), 100);
  assert.deepEqual([...region.subarray(16, 29)], [0x81, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08]);
  assert.ok(decodeMaskRegion(region, 2, 100, 'cluster').equals(bm));
  assert.throws(() => decodeMaskRegion(region, 1, 100, 'page'), code('BAD_METADATA'));
  assert.throws(() => decodeMaskRegion(region, 2, 101, 'cluster'), code('BAD_METADATA'));
  region[20] = 1;
  assert.throws(() => decodeMaskRegion(region, 2, 100, 'cluster'), code('BAD_CHECKSUM'));
});

function md(over: Partial<BlobMd>): BlobMd {
  return {
    thin: false, readOnly: false, parentId: 0, pendingKind: PENDING_NONE, pendingOther: 0,
    xattrs: new Map(), clusters: new Uint32Array(0), ...over,
  };
}

test('extent runs: consecutive clusters and unallocated stretches', () => {
  assert.deepEqual(extentRuns(Uint32Array.from([10, 11, 12, 0, 0, 20, 22, 23])), [[10, 3], [0, 2], [20, 1], [22, 2]]);
});

test('blob metadata: one page, exact descriptor bytes', () => {
  const areas = encodeBlobMd(md({ thin: true, clusters: Uint32Array.from([9, 10, 0]) }));
  assert.equal(areas.length, 1);
  const a = areas[0];
  const v = new DataView(a.buffer);
  assert.equal(a[0], MD_DESC_FLAGS);
  assert.equal(v.getUint32(1, true), 24);
  assert.equal(v.getBigUint64(5, true), 1n, 'thin provisioning bit');
  assert.equal(a[29], MD_DESC_EXTENT_RLE);
  assert.equal(v.getUint32(30, true), 16);
  assert.deepEqual([v.getUint32(34, true), v.getUint32(38, true), v.getUint32(42, true), v.getUint32(46, true)], [9, 2, 0, 1]);
  assert.equal(a[50], 0, 'padding ends the descriptors');
  const back = decodeBlobMd(areas, 't');
  assert.deepEqual([...back.clusters], [9, 10, 0]);
  assert.equal(back.thin, true);
});

test('blob metadata spanning pages: many extents, large xattrs, parent and pending marker', () => {
  const clusters = new Uint32Array(3000);
  for (let i = 0; i < clusters.length; i++) clusters[i] = i % 3 === 2 ? 0 : 100 + 2 * i; // no two consecutive
  const x = new Map([['name', new Uint8Array(3000).fill(65)], ['uuid', new TextEncoder().encode('u-1')]]);
  const m = md({ readOnly: true, parentId: 2 ** 32 + 7, pendingKind: PENDING_SNAPSHOT_OF, pendingOther: 2 ** 32 + 9, xattrs: x, clusters });
  const areas = encodeBlobMd(m);
  assert.equal(areas.length, 7, '3000 runs of 8 bytes plus a 3 KiB xattr need 7 pages');
  const back = decodeBlobMd(areas, 't');
  assert.deepEqual(back.clusters, clusters);
  assert.equal(back.readOnly, true);
  assert.equal(back.parentId, 2 ** 32 + 7);
  assert.equal(back.pendingKind, PENDING_SNAPSHOT_OF);
  assert.equal(back.pendingOther, 2 ** 32 + 9);
  assert.deepEqual([...back.xattrs.keys()], ['name', 'uuid']);
  assert.equal(back.xattrs.get('name')!.length, 3000);
});

test('malformed descriptors are BAD_METADATA', () => {
  const good = encodeBlobMd(md({ clusters: Uint32Array.from([9]) }))[0];
  const unknown = good.slice();
  unknown[29] = 77;
  assert.throws(() => decodeBlobMd([unknown], 't'), (e: unknown) => code('BAD_METADATA')(e) && /unknown descriptor type 77/.test((e as Error).message));
  const overrun = good.slice();
  new DataView(overrun.buffer).setUint32(30, 5000, true);
  assert.throws(() => decodeBlobMd([overrun], 't'), code('BAD_METADATA'));
  const foreignFlag = good.slice();
  foreignFlag[5] = 0x80;
  assert.throws(() => decodeBlobMd([foreignFlag], 't'), (e: unknown) => code('BAD_METADATA')(e) && /unsupported flags/.test((e as Error).message));
  assert.throws(() => decodeBlobMd([new Uint8Array(4072)], 't'), (e: unknown) => code('BAD_METADATA')(e) && /no flags/.test((e as Error).message));
});

test('metadata pages: header, crc; a zeroed page is never valid', () => {
  const page = sealMdPage(new Uint8Array(4072).fill(1), 2 ** 32 + 3, 2, 17);
  assert.deepEqual(readMdPageHeader(page), { id: 2 ** 32 + 3, sequence: 2, next: 17 });
  assert.ok(mdPageCrcValid(page));
  assert.equal(new DataView(page.buffer).getUint32(MD_PAGE_CRC_OFFSET, true), crc32c(page, 0, MD_PAGE_CRC_OFFSET));
  page[100] ^= 4;
  assert.equal(mdPageCrcValid(page), false);
  assert.equal(mdPageCrcValid(new Uint8Array(4096)), false);
});
