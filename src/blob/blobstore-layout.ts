// Where everything lives on the device, computed from (device size, cluster size, metadata
// pages). The super block records the result; load recomputes it and refuses a mismatch.
// Units: a page is BS_PAGE_SIZE bytes (the metadata write unit, assumed atomic); clusters are
// numbered from the start of the device, so the clusters covering the metadata are reserved.
import { BlobError } from './blob-error.ts';

export const BS_PAGE_SIZE = 4096;
export const BS_SUPER_SIGNATURE = 'VHDBLOBS';
export const BS_VERSION = 1;
/** Mask region header: type u8, 3 reserved, length in bits u32, crc32c u32, reserved u32. */
export const BS_MASK_HEADER_SIZE = 16;
export const BS_MASK_TYPE_USED_PAGES = 1;
export const BS_MASK_TYPE_USED_CLUSTERS = 2;
export const BS_MASK_TYPE_USED_BLOBIDS = 3;
/** Blob ids are the root metadata page index plus this, so an id is never mistaken for an index. */
export const BLOB_ID_BASE = 2 ** 32;
export const BLOB_ID_NONE = 0;
export const BS_MIN_CLUSTER_SIZE = BS_PAGE_SIZE;
export const BS_MAX_CLUSTER_SIZE = 2 ** 30;
/** Bound on a blob's size in clusters: the in-memory cluster map is 4 bytes per cluster. */
export const BLOB_MAX_CLUSTERS = 2 ** 26;
/** Bound on the metadata region (pages): keeps the page mask and a dirty replay bounded. */
export const BS_MAX_MD_PAGES = 2 ** 31;

export interface BlobstoreLayout {
  /** Bytes of the device the blobstore covers. */
  sizeBytes: number;
  clusterSize: number;
  totalClusters: number;
  usedPageMaskStart: number;
  usedPageMaskLen: number;
  usedClusterMaskStart: number;
  usedClusterMaskLen: number;
  usedBlobIdMaskStart: number;
  usedBlobIdMaskLen: number;
  mdStart: number;
  mdLen: number;
  /** Clusters [0, reservedClusters) hold the super block, masks and metadata region. */
  reservedClusters: number;
}

/** Pages a mask region of `bits` bits needs, header included. */
export function maskPages(bits: number): number {
  return Math.ceil((BS_MASK_HEADER_SIZE + Math.ceil(bits / 8)) / BS_PAGE_SIZE);
}

export function checkClusterSize(clusterSize: number, blockSize: number): void {
  if (
    !Number.isInteger(clusterSize) || clusterSize < BS_MIN_CLUSTER_SIZE || clusterSize > BS_MAX_CLUSTER_SIZE ||
    (clusterSize & (clusterSize - 1)) !== 0 || clusterSize % blockSize !== 0
  ) {
    throw new BlobError(
      'INVALID_ARGUMENT',
      `cluster size ${clusterSize} must be a power of two in [${BS_MIN_CLUSTER_SIZE}, ${BS_MAX_CLUSTER_SIZE}] and a multiple of the ${blockSize}-byte block`,
    );
  }
}

/** mdPages 0 means one metadata page per cluster (enough for every cluster to be its own blob). */
export function computeLayout(sizeBytes: number, clusterSize: number, mdPages: number): BlobstoreLayout {
  const totalClusters = Math.floor(sizeBytes / clusterSize);
  const mdLen = mdPages === 0 ? totalClusters : mdPages;
  if (!Number.isSafeInteger(mdLen) || mdLen < 1 || mdLen > BS_MAX_MD_PAGES) {
    throw new BlobError('INVALID_ARGUMENT', `metadata page count ${mdLen} must be in [1, ${BS_MAX_MD_PAGES}]`);
  }
  const usedPageMaskStart = 1;
  const usedPageMaskLen = maskPages(mdLen);
  const usedClusterMaskStart = usedPageMaskStart + usedPageMaskLen;
  const usedClusterMaskLen = maskPages(totalClusters);
  const usedBlobIdMaskStart = usedClusterMaskStart + usedClusterMaskLen;
  const usedBlobIdMaskLen = maskPages(mdLen);
  const mdStart = usedBlobIdMaskStart + usedBlobIdMaskLen;
  const reservedClusters = Math.ceil(((mdStart + mdLen) * BS_PAGE_SIZE) / clusterSize);
  if (reservedClusters >= totalClusters) {
    throw new BlobError(
      'DEVICE_TOO_SMALL',
      `${sizeBytes} bytes hold ${totalClusters} clusters of ${clusterSize}; metadata needs ${reservedClusters} of them, leaving none for data`,
    );
  }
  return {
    sizeBytes, clusterSize, totalClusters,
    usedPageMaskStart, usedPageMaskLen, usedClusterMaskStart, usedClusterMaskLen,
    usedBlobIdMaskStart, usedBlobIdMaskLen, mdStart, mdLen, reservedClusters,
  };
}

export function blobIdOfPage(mdPage: number): number {
  return BLOB_ID_BASE + mdPage;
}

/** Metadata page index of a blob id, or -1 when the id cannot name a page of this layout. */
export function pageOfBlobId(layout: BlobstoreLayout, id: number): number {
  if (!Number.isSafeInteger(id)) return -1;
  const page = id - BLOB_ID_BASE;
  return page >= 0 && page < layout.mdLen ? page : -1;
}

/** Device byte offset of metadata page i. */
export function mdPageOffset(layout: BlobstoreLayout, mdPage: number): number {
  return (layout.mdStart + mdPage) * BS_PAGE_SIZE;
}
