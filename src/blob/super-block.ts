// The super block: page 0 of the device. Written at format, rewritten with clean = 0 when a
// blobstore is loaded (before any other change) and with clean = 1 as the last write of unload.
import { BlobError } from './blob-error.ts';
import { crc32c } from './crc32c.ts';
import { BS_PAGE_SIZE, BS_SUPER_SIGNATURE, BS_VERSION, type BlobstoreLayout } from './blobstore-layout.ts';

export const SB_SIGNATURE_OFFSET = 0; // 8 bytes ASCII
export const SB_VERSION_OFFSET = 8; // u32
export const SB_LENGTH_OFFSET = 12; // u32, BS_PAGE_SIZE
export const SB_CLEAN_OFFSET = 16; // u32, 1 after a clean unload
export const SB_SUPER_BLOB_OFFSET = 24; // u64 blob id, 0 = none
export const SB_CLUSTER_SIZE_OFFSET = 32; // u32 bytes
export const SB_USED_PAGE_MASK_START_OFFSET = 36; // u32 pages, and each _LEN the u32 after it
export const SB_USED_CLUSTER_MASK_START_OFFSET = 44;
export const SB_USED_BLOBID_MASK_START_OFFSET = 52;
export const SB_MD_START_OFFSET = 60;
export const SB_SIZE_OFFSET = 72; // u64 bytes covered
export const SB_BSTYPE_OFFSET = 80; // 16 bytes ASCII, NUL padded
export const SB_BSTYPE_SIZE = 16;
export const SB_UUID_OFFSET = 96; // 16 bytes
export const SB_CRC_OFFSET = BS_PAGE_SIZE - 4; // crc32c of bytes [0, SB_CRC_OFFSET)

export interface SuperBlock {
  version: number;
  clean: boolean;
  superBlobId: number;
  layout: BlobstoreLayout;
  bstype: string;
  uuid: Uint8Array;
}

export function encodeSuperBlock(sb: SuperBlock): Uint8Array {
  const page = new Uint8Array(BS_PAGE_SIZE);
  const v = new DataView(page.buffer);
  const L = sb.layout;
  page.set(new TextEncoder().encode(BS_SUPER_SIGNATURE), SB_SIGNATURE_OFFSET);
  v.setUint32(SB_VERSION_OFFSET, sb.version, true);
  v.setUint32(SB_LENGTH_OFFSET, BS_PAGE_SIZE, true);
  v.setUint32(SB_CLEAN_OFFSET, sb.clean ? 1 : 0, true);
  v.setBigUint64(SB_SUPER_BLOB_OFFSET, BigInt(sb.superBlobId), true);
  v.setUint32(SB_CLUSTER_SIZE_OFFSET, L.clusterSize, true);
  v.setUint32(SB_USED_PAGE_MASK_START_OFFSET, L.usedPageMaskStart, true);
  v.setUint32(SB_USED_PAGE_MASK_START_OFFSET + 4, L.usedPageMaskLen, true);
  v.setUint32(SB_USED_CLUSTER_MASK_START_OFFSET, L.usedClusterMaskStart, true);
  v.setUint32(SB_USED_CLUSTER_MASK_START_OFFSET + 4, L.usedClusterMaskLen, true);
  v.setUint32(SB_USED_BLOBID_MASK_START_OFFSET, L.usedBlobIdMaskStart, true);
  v.setUint32(SB_USED_BLOBID_MASK_START_OFFSET + 4, L.usedBlobIdMaskLen, true);
  v.setUint32(SB_MD_START_OFFSET, L.mdStart, true);
  v.setUint32(SB_MD_START_OFFSET + 4, L.mdLen, true);
  v.setBigUint64(SB_SIZE_OFFSET, BigInt(L.sizeBytes), true);
  const bstype = new TextEncoder().encode(sb.bstype);
  if (bstype.length > SB_BSTYPE_SIZE) throw new BlobError('INVALID_ARGUMENT', `bstype "${sb.bstype}" exceeds ${SB_BSTYPE_SIZE} bytes`);
  page.set(bstype, SB_BSTYPE_OFFSET);
  page.set(sb.uuid.subarray(0, 16), SB_UUID_OFFSET);
  v.setUint32(SB_CRC_OFFSET, crc32c(page, 0, SB_CRC_OFFSET), true);
  return page;
}

/** The layout fields as stored; the caller compares them with a recomputed layout. */
export interface StoredLayoutFields {
  clusterSize: number;
  sizeBytes: number;
  mdLen: number;
  fields: Omit<BlobstoreLayout, 'sizeBytes' | 'clusterSize' | 'totalClusters' | 'reservedClusters'>;
}

export function decodeSuperBlock(page: Uint8Array): { sb: Omit<SuperBlock, 'layout'>; stored: StoredLayoutFields } {
  if (page.length < BS_PAGE_SIZE) throw new BlobError('BAD_SUPER', `super block is ${page.length} bytes`);
  const sig = new TextDecoder().decode(page.subarray(SB_SIGNATURE_OFFSET, SB_SIGNATURE_OFFSET + 8));
  if (sig !== BS_SUPER_SIGNATURE) throw new BlobError('BAD_SUPER', `no blobstore signature (found ${JSON.stringify(sig)})`);
  const v = new DataView(page.buffer, page.byteOffset, BS_PAGE_SIZE);
  const stored = v.getUint32(SB_CRC_OFFSET, true);
  const actual = crc32c(page, 0, SB_CRC_OFFSET);
  if (stored !== actual) {
    throw new BlobError('BAD_CHECKSUM', `super block crc32c is ${hex(stored)}, contents give ${hex(actual)}`);
  }
  const version = v.getUint32(SB_VERSION_OFFSET, true);
  if (version !== BS_VERSION) throw new BlobError('BAD_SUPER', `blobstore version ${version} is not supported (only ${BS_VERSION})`);
  const length = v.getUint32(SB_LENGTH_OFFSET, true);
  if (length !== BS_PAGE_SIZE) throw new BlobError('BAD_SUPER', `super block length ${length} is not ${BS_PAGE_SIZE}`);
  const clean = v.getUint32(SB_CLEAN_OFFSET, true);
  if (clean > 1) throw new BlobError('BAD_SUPER', `clean flag ${clean} is neither 0 nor 1`);
  const bstypeBytes = page.subarray(SB_BSTYPE_OFFSET, SB_BSTYPE_OFFSET + SB_BSTYPE_SIZE);
  const nul = bstypeBytes.indexOf(0);
  return {
    sb: {
      version,
      clean: clean === 1,
      superBlobId: Number(v.getBigUint64(SB_SUPER_BLOB_OFFSET, true)),
      bstype: new TextDecoder().decode(nul < 0 ? bstypeBytes : bstypeBytes.subarray(0, nul)),
      uuid: page.slice(SB_UUID_OFFSET, SB_UUID_OFFSET + 16),
    },
    stored: {
      clusterSize: v.getUint32(SB_CLUSTER_SIZE_OFFSET, true),
      sizeBytes: Number(v.getBigUint64(SB_SIZE_OFFSET, true)),
      mdLen: v.getUint32(SB_MD_START_OFFSET + 4, true),
      fields: {
        usedPageMaskStart: v.getUint32(SB_USED_PAGE_MASK_START_OFFSET, true),
        usedPageMaskLen: v.getUint32(SB_USED_PAGE_MASK_START_OFFSET + 4, true),
        usedClusterMaskStart: v.getUint32(SB_USED_CLUSTER_MASK_START_OFFSET, true),
        usedClusterMaskLen: v.getUint32(SB_USED_CLUSTER_MASK_START_OFFSET + 4, true),
        usedBlobIdMaskStart: v.getUint32(SB_USED_BLOBID_MASK_START_OFFSET, true),
        usedBlobIdMaskLen: v.getUint32(SB_USED_BLOBID_MASK_START_OFFSET + 4, true),
        mdStart: v.getUint32(SB_MD_START_OFFSET, true),
        mdLen: v.getUint32(SB_MD_START_OFFSET + 4, true),
      },
    },
  };
}

export function hex(n: number): string {
  return '0x' + n.toString(16).padStart(8, '0');
}
