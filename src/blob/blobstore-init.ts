// Formatting a device as an empty blobstore. The old super block is destroyed first and the new
// one written last, so a crash mid-format leaves "no blobstore" (BAD_SUPER), never a mix; the
// metadata region is zeroed so a dirty load can never find a root page of an earlier blobstore.
import { randomFillSync } from 'node:crypto';
import { BlobError } from './blob-error.ts';
import type { BlobDevice } from './blob-device.ts';
import { BlobstoreCore } from './blobstore-core.ts';
import { BS_PAGE_SIZE, checkClusterSize, computeLayout } from './blobstore-layout.ts';
import { SB_BSTYPE_SIZE } from './super-block.ts';

export interface FormatOptions {
  /** Bytes per cluster, a power of two >= 4096 (default 1 MiB, as SPDK). */
  clusterSize?: number;
  /** Metadata pages (default: one per cluster). */
  mdPages?: number;
  /** Type tag checked at load, e.g. "LVOLSTORE" (at most 16 bytes). */
  bstype?: string;
  /** Unmap clusters at format, on release and before thick allocation, so they read zeroes (default true). */
  unmapClusters?: boolean;
}

export const DEFAULT_CLUSTER_SIZE = 1024 * 1024;
/** Largest zero-fill write while clearing the metadata region. */
const ZERO_CHUNK_BYTES = 1024 * 1024;

export async function formatCore(dev: BlobDevice, opts: FormatOptions = {}): Promise<BlobstoreCore> {
  if (BS_PAGE_SIZE % dev.blockSize !== 0) {
    throw new BlobError('INVALID_ARGUMENT', `device block size ${dev.blockSize} does not divide the ${BS_PAGE_SIZE}-byte page`);
  }
  const clusterSize = opts.clusterSize ?? DEFAULT_CLUSTER_SIZE;
  checkClusterSize(clusterSize, dev.blockSize);
  const mdPages = opts.mdPages ?? 0;
  if (!Number.isSafeInteger(mdPages) || mdPages < 0) throw new BlobError('INVALID_ARGUMENT', `metadata page count ${mdPages}`);
  const bstype = opts.bstype ?? '';
  if (new TextEncoder().encode(bstype).length > SB_BSTYPE_SIZE) {
    throw new BlobError('INVALID_ARGUMENT', `bstype "${bstype}" exceeds ${SB_BSTYPE_SIZE} bytes`);
  }
  const layout = computeLayout(dev.blockSize * dev.numBlocks, clusterSize, mdPages);
  const uuid = randomFillSync(new Uint8Array(16));
  uuid[6] = (uuid[6] & 0x0f) | 0x40; // RFC 4122 version 4
  uuid[8] = (uuid[8] & 0x3f) | 0x80;
  const core = new BlobstoreCore(dev, layout, bstype, uuid, opts.unmapClusters ?? true);

  await dev.write(0, new Uint8Array(BS_PAGE_SIZE));
  await dev.flush();
  const mdFirst = layout.usedPageMaskStart * BS_PAGE_SIZE;
  const mdEnd = (layout.mdStart + layout.mdLen) * BS_PAGE_SIZE;
  const zeroes = new Uint8Array(Math.min(ZERO_CHUNK_BYTES, mdEnd - mdFirst));
  for (let off = mdFirst; off < mdEnd; off += zeroes.length) {
    await dev.write(off, zeroes.subarray(0, Math.min(zeroes.length, mdEnd - off)));
  }
  if (core.clearByUnmap) {
    const first = layout.reservedClusters * clusterSize;
    await dev.unmap(first, layout.totalClusters * clusterSize - first);
  }
  await dev.flush();
  await core.writeSuper(false);
  return core;
}

export function formatUuid(uuid: Uint8Array): string {
  const h = Array.from(uuid, (b) => b.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
