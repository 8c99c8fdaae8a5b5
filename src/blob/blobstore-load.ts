// Loading a blobstore: the super block, then every blob's metadata, from the blob-id mask after a
// clean unload or by scanning the whole metadata region after a crash (dirty load, which rebuilds
// all three bitmaps from what the blobs claim). Then multi-blob operations a crash interrupted are
// finished or undone (pending markers), the parent/clone links are built and checked.
import { BlobError } from './blob-error.ts';
import type { BlobDevice } from './blob-device.ts';
import { Bitmap } from './bitmap.ts';
import { BlobRecord } from './blob-record.ts';
import { BlobstoreCore } from './blobstore-core.ts';
import { decodeBlobMd, PENDING_NONE, PENDING_REMOVAL_INTO, PENDING_SNAPSHOT_OF } from './blob-md-codec.ts';
import {
  BLOB_ID_NONE, BS_MASK_TYPE_USED_BLOBIDS, BS_MASK_TYPE_USED_CLUSTERS, BS_MASK_TYPE_USED_PAGES, BS_PAGE_SIZE,
  blobIdOfPage, checkClusterSize, computeLayout, mdPageOffset, type BlobstoreLayout,
} from './blobstore-layout.ts';
import { decodeMaskRegion } from './mask-region.ts';
import { MD_PAGE_NONE, mdPageCrc, mdPageCrcValid, mdPageDescriptors, readMdPageHeader } from './md-page.ts';
import { decodeSuperBlock, hex } from './super-block.ts';

export interface LoadOptions {
  /** Refuse a blobstore of another type (empty: accept any). */
  bstype?: string;
  /** As FormatOptions.unmapClusters (a run-time choice, not stored). */
  unmapClusters?: boolean;
}

export interface LoadResult {
  core: BlobstoreCore;
  wasClean: boolean;
  /** What recovery did, one line per action (for the log). */
  recovered: string[];
}

/** Pages read per request while scanning the metadata region. */
const REPLAY_CHUNK_PAGES = 256;

async function readPage(dev: BlobDevice, offset: number): Promise<Uint8Array> {
  const page = new Uint8Array(BS_PAGE_SIZE);
  await dev.read(offset, BS_PAGE_SIZE, page);
  return page;
}

async function readLayout(dev: BlobDevice, opts: LoadOptions) {
  if (BS_PAGE_SIZE % dev.blockSize !== 0) {
    throw new BlobError('INVALID_ARGUMENT', `device block size ${dev.blockSize} does not divide the ${BS_PAGE_SIZE}-byte page`);
  }
  const devBytes = dev.blockSize * dev.numBlocks;
  if (devBytes < BS_PAGE_SIZE) throw new BlobError('BAD_SUPER', `device of ${devBytes} bytes cannot hold a super block`);
  const { sb, stored } = decodeSuperBlock(await readPage(dev, 0));
  if (opts.bstype && sb.bstype !== opts.bstype) {
    throw new BlobError('BS_TYPE_MISMATCH', `blobstore type is "${sb.bstype}", expected "${opts.bstype}"`);
  }
  if (stored.sizeBytes > devBytes) {
    throw new BlobError('DEVICE_TOO_SMALL', `blobstore covers ${stored.sizeBytes} bytes, device has ${devBytes}`);
  }
  let layout: BlobstoreLayout;
  try {
    checkClusterSize(stored.clusterSize, dev.blockSize);
    layout = computeLayout(stored.sizeBytes, stored.clusterSize, stored.mdLen);
  } catch (e) {
    throw new BlobError('BAD_SUPER', `super block geometry is invalid: ${(e as Error).message}`);
  }
  for (const [k, v] of Object.entries(stored.fields)) {
    const want = layout[k as keyof typeof stored.fields];
    if (v !== want) throw new BlobError('BAD_SUPER', `super block ${k} is ${v}, the geometry gives ${want}`);
  }
  return { sb, layout };
}

/** Reads and checks the chain behind a root page; returns the blob's record (not yet linked). */
async function readBlob(core: BlobstoreCore, rootPage: number, root: Uint8Array): Promise<BlobRecord> {
  const L = core.layout;
  const id = blobIdOfPage(rootPage);
  const where = `blob ${hex(id)}`;
  const h = readMdPageHeader(root);
  if (h.id !== id || h.sequence !== 0) {
    throw new BlobError('BAD_METADATA', `${where}: root page ${rootPage} holds id 0x${h.id.toString(16)} sequence ${h.sequence}`);
  }
  const areas = [mdPageDescriptors(root)];
  const chain: number[] = [];
  const seen = new Set<number>([rootPage]);
  let next = h.next;
  while (next !== MD_PAGE_NONE) {
    if (next >= L.mdLen || seen.has(next)) throw new BlobError('BAD_METADATA', `${where}: chain points at page ${next}`);
    seen.add(next);
    const page = await readPage(core.device, mdPageOffset(L, next));
    const crc = mdPageCrc(page);
    if (crc.stored !== crc.actual) {
      throw new BlobError('BAD_CHECKSUM', `${where}: metadata page ${next} crc32c is ${hex(crc.stored)}, contents give ${hex(crc.actual)}`);
    }
    const ph = readMdPageHeader(page);
    if (ph.id !== id || ph.sequence !== chain.length + 1) {
      throw new BlobError('BAD_METADATA', `${where}: page ${next} holds id 0x${ph.id.toString(16)} sequence ${ph.sequence}, expected ${chain.length + 1}`);
    }
    chain.push(next);
    areas.push(mdPageDescriptors(page));
    next = ph.next;
  }
  const md = decodeBlobMd(areas, where);
  const rec = new BlobRecord(id, rootPage, L.clusterSize, md.clusters.length);
  rec.applyMd(md);
  rec.chainPages = chain;
  return rec;
}

async function loadCleanBlobs(core: BlobstoreCore): Promise<{ found: BlobRecord[]; clusterMask: Bitmap; pageMask: Bitmap }> {
  const L = core.layout;
  const dev = core.device;
  const region = async (start: number, len: number) => {
    const b = new Uint8Array(len * BS_PAGE_SIZE);
    await dev.read(start * BS_PAGE_SIZE, b.length, b);
    return b;
  };
  const pageMask = decodeMaskRegion(await region(L.usedPageMaskStart, L.usedPageMaskLen), BS_MASK_TYPE_USED_PAGES, L.mdLen, 'used page');
  const clusterMask = decodeMaskRegion(
    await region(L.usedClusterMaskStart, L.usedClusterMaskLen), BS_MASK_TYPE_USED_CLUSTERS, L.totalClusters, 'used cluster',
  );
  const idMask = decodeMaskRegion(await region(L.usedBlobIdMaskStart, L.usedBlobIdMaskLen), BS_MASK_TYPE_USED_BLOBIDS, L.mdLen, 'used blob id');
  const found: BlobRecord[] = [];
  for (let p = 0; p < L.mdLen; p++) {
    if (!idMask.get(p)) continue;
    const root = await readPage(dev, mdPageOffset(L, p));
    const crc = mdPageCrc(root);
    if (crc.stored !== crc.actual) {
      throw new BlobError('BAD_CHECKSUM', `blob ${hex(blobIdOfPage(p))}: root page ${p} crc32c is ${hex(crc.stored)}, contents give ${hex(crc.actual)}`);
    }
    const f = await readBlob(core, p, root);
    for (const q of [p, ...f.chainPages]) {
      if (!pageMask.get(q)) throw new BlobError('BAD_METADATA', `blob ${hex(f.id)} uses page ${q}, which the used page mask says is free`);
    }
    found.push(f);
  }
  return { found, clusterMask, pageMask };
}

/** Every page with a valid crc and sequence 0 is a live root (deleted blobs' roots are zeroed). */
async function replayBlobs(core: BlobstoreCore): Promise<BlobRecord[]> {
  const L = core.layout;
  const found: BlobRecord[] = [];
  const buf = new Uint8Array(REPLAY_CHUNK_PAGES * BS_PAGE_SIZE);
  for (let start = 0; start < L.mdLen; start += REPLAY_CHUNK_PAGES) {
    const n = Math.min(REPLAY_CHUNK_PAGES, L.mdLen - start);
    await core.device.read(mdPageOffset(L, start), n * BS_PAGE_SIZE, buf);
    for (let k = 0; k < n; k++) {
      const page = buf.subarray(k * BS_PAGE_SIZE, (k + 1) * BS_PAGE_SIZE);
      if (!mdPageCrcValid(page) || readMdPageHeader(page).sequence !== 0) continue;
      found.push(await readBlob(core, start + k, page.slice()));
    }
  }
  return found;
}

export async function loadCore(dev: BlobDevice, opts: LoadOptions = {}): Promise<LoadResult> {
  const { sb, layout } = await readLayout(dev, opts);
  const core = new BlobstoreCore(dev, layout, sb.bstype, sb.uuid, opts.unmapClusters ?? true);
  let found: BlobRecord[];
  let clusterMask: Bitmap | null = null;
  let pageMask: Bitmap | null = null;
  if (sb.clean) ({ found, clusterMask, pageMask } = await loadCleanBlobs(core));
  else found = await replayBlobs(core);

  const byId = new Map<number, BlobRecord>(found.map((r) => [r.id, r]));
  const recovered: string[] = [];
  // Interrupted multi-blob operations (see docs/blobstore-format.md, "Pending markers").
  const drop: BlobRecord[] = [];
  const clearMarker: BlobRecord[] = [];
  for (const rec of byId.values()) {
    if (rec.pendingKind === PENDING_NONE) continue;
    const other = byId.get(rec.pendingOther);
    if (rec.pendingKind === PENDING_SNAPSHOT_OF) {
      if (other && other.parentId === rec.id) clearMarker.push(rec);
      else drop.push(rec);
    } else if (rec.pendingKind === PENDING_REMOVAL_INTO) {
      if (other && other.parentId !== rec.id) drop.push(rec);
      else clearMarker.push(rec);
    }
  }
  for (const rec of drop) byId.delete(rec.id);

  // Pages: every blob's (dropped ones too, until their roots are erased) exactly once.
  const claimPage = (p: number, rec: BlobRecord) => {
    if (core.usedPages.get(p)) throw new BlobError('METADATA_CONFLICT', `metadata page ${p} is claimed twice (second by blob ${hex(rec.id)})`);
    core.usedPages.set(p);
  };
  for (const r of found) {
    claimPage(r.rootPage, r);
    for (const p of r.chainPages) claimPage(p, r);
    core.usedBlobIds.set(r.rootPage);
  }
  // Clusters: only kept blobs claim; each data cluster at most once.
  const owner = new Map<number, number>();
  for (const rec of byId.values()) {
    for (const c of rec.ownedClusters()) {
      if (c < layout.reservedClusters || c >= layout.totalClusters) {
        throw new BlobError('BAD_METADATA', `blob ${hex(rec.id)} claims cluster ${c}, outside the data clusters [${layout.reservedClusters}, ${layout.totalClusters})`);
      }
      const prev = owner.get(c);
      if (prev !== undefined) throw new BlobError('METADATA_CONFLICT', `cluster ${c} is claimed by blobs ${hex(prev)} and ${hex(rec.id)}`);
      owner.set(c, rec.id);
      core.usedClusters.set(c);
    }
  }
  if (clusterMask && pageMask) {
    for (const c of owner.keys()) {
      if (!clusterMask.get(c)) throw new BlobError('BAD_METADATA', `cluster ${c} of blob ${hex(owner.get(c)!)} is free in the used cluster mask`);
    }
    // Clean: the masks are authoritative (they may hold clusters leaked by a failed device write).
    core.usedClusters.assign(clusterMask);
    core.markReservedClusters();
    for (let p = 0; p < layout.mdLen; p++) if (pageMask.get(p)) core.usedPages.set(p);
  }
  linkParents(byId);
  for (const rec of byId.values()) core.blobs.set(rec.id, rec);
  core.superBlobId = byId.has(sb.superBlobId) ? sb.superBlobId : BLOB_ID_NONE;

  // Mark the store in use before changing anything; a dirty store already says so.
  if (sb.clean) await core.writeSuper(false);
  for (const rec of drop) {
    await core.eraseMd(rec);
    recovered.push(`removed blob ${hex(rec.id)} left by an interrupted ${rec.pendingKind === PENDING_SNAPSHOT_OF ? 'snapshot' : 'snapshot deletion'}`);
  }
  for (const rec of clearMarker) {
    const kind = rec.pendingKind === PENDING_SNAPSHOT_OF ? 'snapshot creation' : 'snapshot deletion';
    rec.pendingKind = PENDING_NONE;
    rec.pendingOther = BLOB_ID_NONE;
    await core.persist(rec);
    recovered.push(`blob ${hex(rec.id)}: ${kind} ${kind === 'snapshot creation' ? 'completed' : 'rolled back'}`);
  }
  return { core, wasClean: sb.clean, recovered };
}

/** Sets parent maps and clone sets; a parent must exist, be read-only, and chains must end. */
function linkParents(byId: Map<number, BlobRecord>): void {
  for (const rec of byId.values()) {
    if (rec.parentId === BLOB_ID_NONE) continue;
    const p = byId.get(rec.parentId);
    if (!p) throw new BlobError('BAD_METADATA', `blob ${hex(rec.id)} has parent ${hex(rec.parentId)}, which does not exist`);
    if (!p.readOnly) throw new BlobError('BAD_METADATA', `blob ${hex(rec.id)} has parent ${hex(p.id)}, which is writable`);
    rec.map.parent = p.map;
    p.clones.add(rec.id);
  }
  for (const rec of byId.values()) {
    let m = rec.map.parent;
    for (let depth = 0; m !== null; depth++) {
      if (depth >= byId.size) throw new BlobError('BAD_METADATA', `blob ${hex(rec.id)}: its parent chain loops`);
      m = m.parent;
    }
  }
}
