// A blob's metadata <-> the descriptor areas of its metadata pages. Each descriptor is
// { type u8, length u32 (body bytes), body } and never straddles a page; a PADDING type (0) ends a
// page's descriptors. Cluster maps are run-length extents, split over as many pages as needed.
import { BlobError } from './blob-error.ts';
import { BLOB_ID_NONE, BLOB_MAX_CLUSTERS } from './blobstore-layout.ts';
import { MD_PAGE_DESCRIPTORS_SIZE } from './md-page.ts';

export const MD_DESC_PADDING = 0;
/** Body: n x { cluster u32 (0 = a run of unallocated clusters), count u32 }. */
export const MD_DESC_EXTENT_RLE = 1;
/** Body: nameLength u16, valueLength u16, name (UTF-8), value. */
export const MD_DESC_XATTR = 2;
/** Body: invalidFlags u64, dataRoFlags u64, mdRoFlags u64. */
export const MD_DESC_FLAGS = 3;
/** Body: parent blob id u64 (the snapshot this blob is a thin clone of). */
export const MD_DESC_PARENT = 5;
/** Body: kind u32, other blob id u64: a multi-blob operation this blob is part of (see docs). */
export const MD_DESC_PENDING = 6;
export const MD_DESC_HEADER_SIZE = 5;

/** invalidFlags bit: unallocated clusters are allowed (allocated on first write). */
export const BLOB_THIN_PROV = 1n;
/** dataRoFlags bit: no data writes or resizes. */
export const BLOB_READ_ONLY = 1n;

export const PENDING_NONE = 0;
/** On a new snapshot: it takes the clusters of blob `other`, which will become its clone. */
export const PENDING_SNAPSHOT_OF = 1;
/** On a snapshot being deleted: its clusters are being merged into its only clone `other`. */
export const PENDING_REMOVAL_INTO = 2;

export const XATTR_MAX_NAME_BYTES = 255;
/** Largest xattr (name + value bytes) that fits in one descriptor on an otherwise empty page. */
export const XATTR_MAX_BYTES = MD_PAGE_DESCRIPTORS_SIZE - MD_DESC_HEADER_SIZE - 4;

export interface BlobMd {
  thin: boolean;
  readOnly: boolean;
  parentId: number;
  pendingKind: number;
  pendingOther: number;
  xattrs: Map<string, Uint8Array>;
  /** One entry per blob cluster: device cluster index, 0 when unallocated. */
  clusters: Uint32Array;
}

/** Throws XATTR_TOO_LARGE / INVALID_ARGUMENT unless the xattr can be stored. */
export function checkXattr(name: string, value: Uint8Array): void {
  const n = new TextEncoder().encode(name).length;
  if (n === 0) throw new BlobError('INVALID_ARGUMENT', 'xattr name is empty');
  if (n > XATTR_MAX_NAME_BYTES) throw new BlobError('XATTR_TOO_LARGE', `xattr name is ${n} bytes, limit ${XATTR_MAX_NAME_BYTES}`);
  if (n + value.length > XATTR_MAX_BYTES) {
    throw new BlobError('XATTR_TOO_LARGE', `xattr "${name}" is ${n + value.length} bytes, limit ${XATTR_MAX_BYTES}`);
  }
}

class AreaWriter {
  readonly areas: Uint8Array[] = [];
  area = new Uint8Array(MD_PAGE_DESCRIPTORS_SIZE);
  view = new DataView(this.area.buffer);
  pos = 0;
  constructor() {
    this.areas.push(this.area);
  }
  room(): number {
    return MD_PAGE_DESCRIPTORS_SIZE - this.pos;
  }
  newPage(): void {
    this.area = new Uint8Array(MD_PAGE_DESCRIPTORS_SIZE);
    this.view = new DataView(this.area.buffer);
    this.areas.push(this.area);
    this.pos = 0;
  }
  /** Starts a descriptor with `body` bytes, on a new page when it does not fit; returns the body offset. */
  begin(type: number, body: number): number {
    if (this.room() < MD_DESC_HEADER_SIZE + body) this.newPage();
    this.area[this.pos] = type;
    this.view.setUint32(this.pos + 1, body, true);
    const at = this.pos + MD_DESC_HEADER_SIZE;
    this.pos = at + body;
    return at;
  }
}

export function encodeBlobMd(md: BlobMd): Uint8Array[] {
  const w = new AreaWriter();
  let at = w.begin(MD_DESC_FLAGS, 24);
  w.view.setBigUint64(at, md.thin ? BLOB_THIN_PROV : 0n, true);
  w.view.setBigUint64(at + 8, md.readOnly ? BLOB_READ_ONLY : 0n, true);
  w.view.setBigUint64(at + 16, 0n, true);
  if (md.parentId !== BLOB_ID_NONE) {
    at = w.begin(MD_DESC_PARENT, 8);
    w.view.setBigUint64(at, BigInt(md.parentId), true);
  }
  if (md.pendingKind !== PENDING_NONE) {
    at = w.begin(MD_DESC_PENDING, 12);
    w.view.setUint32(at, md.pendingKind, true);
    w.view.setBigUint64(at + 4, BigInt(md.pendingOther), true);
  }
  const enc = new TextEncoder();
  for (const [name, value] of md.xattrs) {
    const nb = enc.encode(name);
    checkXattr(name, value);
    at = w.begin(MD_DESC_XATTR, 4 + nb.length + value.length);
    w.view.setUint16(at, nb.length, true);
    w.view.setUint16(at + 2, value.length, true);
    w.area.set(nb, at + 4);
    w.area.set(value, at + 4 + nb.length);
  }
  const runs = extentRuns(md.clusters);
  let r = 0;
  while (r < runs.length) {
    if (w.room() < MD_DESC_HEADER_SIZE + 8) w.newPage();
    const n = Math.min(runs.length - r, Math.floor((w.room() - MD_DESC_HEADER_SIZE) / 8));
    at = w.begin(MD_DESC_EXTENT_RLE, n * 8);
    for (let k = 0; k < n; k++, r++) {
      w.view.setUint32(at + k * 8, runs[r][0], true);
      w.view.setUint32(at + k * 8 + 4, runs[r][1], true);
    }
  }
  return w.areas;
}

/** [cluster, count] runs: consecutive device clusters, or consecutive unallocated entries. */
export function extentRuns(clusters: Uint32Array): Array<[number, number]> {
  const runs: Array<[number, number]> = [];
  let i = 0;
  while (i < clusters.length) {
    const first = clusters[i];
    let n = 1;
    while (i + n < clusters.length && clusters[i + n] === (first === 0 ? 0 : first + n)) n++;
    runs.push([first, n]);
    i += n;
  }
  return runs;
}

function bad(what: string): never {
  throw new BlobError('BAD_METADATA', what);
}

/** Decodes the descriptor areas of a blob's pages, root first. `where` prefixes error messages. */
export function decodeBlobMd(areas: Uint8Array[], where: string): BlobMd {
  const md: BlobMd = {
    thin: false, readOnly: false, parentId: BLOB_ID_NONE, pendingKind: PENDING_NONE, pendingOther: BLOB_ID_NONE,
    xattrs: new Map(), clusters: new Uint32Array(0),
  };
  let sawFlags = false;
  let sawParent = false;
  let sawPending = false;
  const runs: Array<[number, number]> = [];
  let total = 0;
  const dec = new TextDecoder('utf-8', { fatal: true });
  areas.forEach((area, pageNo) => {
    const v = new DataView(area.buffer, area.byteOffset, area.length);
    let pos = 0;
    while (pos + MD_DESC_HEADER_SIZE <= area.length) {
      const type = area[pos];
      if (type === MD_DESC_PADDING) break;
      const len = v.getUint32(pos + 1, true);
      const at = pos + MD_DESC_HEADER_SIZE;
      if (at + len > area.length) bad(`${where}: descriptor type ${type} at page ${pageNo} offset ${pos} overruns the page (${len} bytes)`);
      const once = (seen: boolean, name: string, size: number): void => {
        if (seen) bad(`${where}: second ${name} descriptor`);
        if (len !== size) bad(`${where}: ${name} descriptor is ${len} bytes, expected ${size}`);
      };
      switch (type) {
        case MD_DESC_FLAGS: {
          once(sawFlags, 'flags', 24);
          sawFlags = true;
          const invalid = v.getBigUint64(at, true);
          const dataRo = v.getBigUint64(at + 8, true);
          const mdRo = v.getBigUint64(at + 16, true);
          if ((invalid & ~BLOB_THIN_PROV) !== 0n || (dataRo & ~BLOB_READ_ONLY) !== 0n || mdRo !== 0n) {
            bad(`${where}: unsupported flags invalid=0x${invalid.toString(16)} data_ro=0x${dataRo.toString(16)} md_ro=0x${mdRo.toString(16)}`);
          }
          md.thin = invalid === BLOB_THIN_PROV;
          md.readOnly = dataRo === BLOB_READ_ONLY;
          break;
        }
        case MD_DESC_PARENT:
          once(sawParent, 'parent', 8);
          sawParent = true;
          md.parentId = Number(v.getBigUint64(at, true));
          if (md.parentId === BLOB_ID_NONE) bad(`${where}: parent descriptor names no blob`);
          break;
        case MD_DESC_PENDING:
          once(sawPending, 'pending', 12);
          sawPending = true;
          md.pendingKind = v.getUint32(at, true);
          md.pendingOther = Number(v.getBigUint64(at + 4, true));
          if (md.pendingKind !== PENDING_SNAPSHOT_OF && md.pendingKind !== PENDING_REMOVAL_INTO) {
            bad(`${where}: unknown pending operation ${md.pendingKind}`);
          }
          break;
        case MD_DESC_XATTR: {
          if (len < 4) bad(`${where}: xattr descriptor of ${len} bytes`);
          const nl = v.getUint16(at, true);
          const vl = v.getUint16(at + 2, true);
          if (4 + nl + vl !== len || nl === 0) bad(`${where}: xattr lengths ${nl}+${vl} do not match descriptor length ${len}`);
          let name: string;
          try {
            name = dec.decode(area.subarray(at + 4, at + 4 + nl));
          } catch {
            bad(`${where}: xattr name is not UTF-8`);
          }
          if (md.xattrs.has(name)) bad(`${where}: xattr "${name}" appears twice`);
          md.xattrs.set(name, area.slice(at + 4 + nl, at + 4 + nl + vl));
          break;
        }
        case MD_DESC_EXTENT_RLE:
          if (len === 0 || len % 8 !== 0) bad(`${where}: extent descriptor of ${len} bytes`);
          for (let k = 0; k < len; k += 8) {
            const c = v.getUint32(at + k, true);
            const n = v.getUint32(at + k + 4, true);
            if (n === 0) bad(`${where}: empty extent`);
            if (c !== 0 && c + n > 0x1_0000_0000) bad(`${where}: extent ${c}+${n} wraps the cluster space`);
            total += n;
            if (total > BLOB_MAX_CLUSTERS) bad(`${where}: more than ${BLOB_MAX_CLUSTERS} clusters`);
            runs.push([c, n]);
          }
          break;
        default:
          bad(`${where}: unknown descriptor type ${type} at page ${pageNo} offset ${pos}`);
      }
      pos = at + len;
    }
  });
  if (!sawFlags) bad(`${where}: no flags descriptor`);
  md.clusters = new Uint32Array(total);
  let i = 0;
  for (const [c, n] of runs) {
    if (c !== 0) for (let k = 0; k < n; k++) md.clusters[i + k] = c + k;
    i += n;
  }
  return md;
}
