// A metadata page: the 4 KiB unit a blob's metadata is stored in, one root page (sequence 0,
// at the page index the blob id names) plus chained pages. The crc covers everything before it,
// so a torn, zeroed or never-written page is never taken for metadata.
import { crc32c } from './crc32c.ts';
import { BS_PAGE_SIZE } from './blobstore-layout.ts';

export const MD_PAGE_ID_OFFSET = 0; // u64 blob id
export const MD_PAGE_SEQUENCE_OFFSET = 8; // u32: 0 for the root, n for the n-th chained page
export const MD_PAGE_DESCRIPTORS_OFFSET = 16;
export const MD_PAGE_DESCRIPTORS_SIZE = 4072;
export const MD_PAGE_NEXT_OFFSET = 4088; // u32 metadata page index of the next page
export const MD_PAGE_CRC_OFFSET = 4092; // u32 crc32c of bytes [0, 4092)
/** `next` of the last page. */
export const MD_PAGE_NONE = 0xffffffff;

export interface MdPageHeader {
  id: number;
  sequence: number;
  next: number;
}

/** Builds a sealed page around a descriptor area of MD_PAGE_DESCRIPTORS_SIZE bytes. */
export function sealMdPage(descriptors: Uint8Array, id: number, sequence: number, next: number): Uint8Array {
  const page = new Uint8Array(BS_PAGE_SIZE);
  const v = new DataView(page.buffer);
  v.setBigUint64(MD_PAGE_ID_OFFSET, BigInt(id), true);
  v.setUint32(MD_PAGE_SEQUENCE_OFFSET, sequence, true);
  page.set(descriptors.subarray(0, MD_PAGE_DESCRIPTORS_SIZE), MD_PAGE_DESCRIPTORS_OFFSET);
  v.setUint32(MD_PAGE_NEXT_OFFSET, next, true);
  v.setUint32(MD_PAGE_CRC_OFFSET, crc32c(page, 0, MD_PAGE_CRC_OFFSET), true);
  return page;
}

export function mdPageCrc(page: Uint8Array): { stored: number; actual: number } {
  const v = new DataView(page.buffer, page.byteOffset, BS_PAGE_SIZE);
  return { stored: v.getUint32(MD_PAGE_CRC_OFFSET, true), actual: crc32c(page, 0, MD_PAGE_CRC_OFFSET) };
}

export function mdPageCrcValid(page: Uint8Array): boolean {
  const c = mdPageCrc(page);
  return c.stored === c.actual;
}

export function readMdPageHeader(page: Uint8Array): MdPageHeader {
  const v = new DataView(page.buffer, page.byteOffset, BS_PAGE_SIZE);
  return {
    id: Number(v.getBigUint64(MD_PAGE_ID_OFFSET, true)),
    sequence: v.getUint32(MD_PAGE_SEQUENCE_OFFSET, true),
    next: v.getUint32(MD_PAGE_NEXT_OFFSET, true),
  };
}

export function mdPageDescriptors(page: Uint8Array): Uint8Array {
  return page.subarray(MD_PAGE_DESCRIPTORS_OFFSET, MD_PAGE_DESCRIPTORS_OFFSET + MD_PAGE_DESCRIPTORS_SIZE);
}
