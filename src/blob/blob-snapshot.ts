// Snapshot, clone, inflate and decouple: the operations that move clusters between blobs or
// change a blob's parent. Each runs inside the metadata queue with the affected blob's I/O frozen.
import { BlobError } from './blob-error.ts';
import type { BlobRecord } from './blob-record.ts';
import type { BlobstoreCore } from './blobstore-core.ts';
import { BLOB_ID_NONE } from './blobstore-layout.ts';
import { PENDING_NONE, PENDING_SNAPSHOT_OF } from './blob-md-codec.ts';
import { dropNewRecord, newRecord, unmaskedByReparent } from './blob-lifecycle.ts';
import type { ClusterMap } from './cluster-map.ts';

function hex(id: number): string {
  return '0x' + id.toString(16);
}

interface SavedParentage {
  entries: Uint32Array;
  parentId: number;
  parentMap: ClusterMap | null;
  thin: boolean;
}

function save(rec: BlobRecord): SavedParentage {
  return { entries: rec.map.entries(), parentId: rec.parentId, parentMap: rec.map.parent, thin: rec.thin };
}

function restore(rec: BlobRecord, s: SavedParentage): void {
  rec.map.assign(s.entries);
  rec.parentId = s.parentId;
  rec.map.parent = s.parentMap;
  rec.thin = s.thin;
}

/** Moves `rec` from its current parent's clone set to `newParentId`'s. */
function reparent(core: BlobstoreCore, rec: BlobRecord, oldParentId: number, newParentId: number): void {
  if (oldParentId !== BLOB_ID_NONE) core.blobs.get(oldParentId)?.clones.delete(rec.id);
  if (newParentId !== BLOB_ID_NONE) core.blobs.get(newParentId)?.clones.add(rec.id);
}

/**
 * Snapshot of b: a new read-only blob s takes all of b's clusters and parent; b becomes a thin
 * clone of s. Three metadata writes: s (marked PENDING_SNAPSHOT_OF b), b (now pointing at s), s
 * (marker cleared). A load that finds the marker keeps s only if b points at it.
 */
export async function snapshotLocked(core: BlobstoreCore, b: BlobRecord, xattrs: Map<string, Uint8Array>): Promise<BlobRecord> {
  if (b.readOnly) throw new BlobError('BLOB_READ_ONLY', `blob ${hex(b.id)} is read-only: snapshot it by cloning instead`);
  const s = newRecord(core, b.numClusters, xattrs);
  s.map.assign(b.map.entries());
  s.parentId = b.parentId;
  s.map.parent = b.map.parent;
  s.readOnly = true;
  s.thin = true;
  s.pendingKind = PENDING_SNAPSHOT_OF;
  s.pendingOther = b.id;
  try {
    await core.persist(s);
  } catch (e) {
    dropNewRecord(core, s);
    throw e;
  }
  const saved = save(b);
  b.map.parent = s.map;
  b.parentId = s.id;
  b.thin = true;
  for (let i = 0; i < b.numClusters; i++) b.map.setEntry(i, 0);
  try {
    await core.persist(b);
  } catch (e) {
    restore(b, saved);
    // s on disk still carries its marker and b does not point at it: a load drops it too.
    await core.eraseMd(s).catch(() => undefined);
    throw e;
  }
  s.pendingKind = PENDING_NONE;
  s.pendingOther = BLOB_ID_NONE;
  core.blobs.set(s.id, s);
  reparent(core, s, BLOB_ID_NONE, s.parentId);
  if (saved.parentId !== BLOB_ID_NONE) core.blobs.get(saved.parentId)?.clones.delete(b.id);
  s.clones.add(b.id);
  // The snapshot is complete in memory and on disk (b points at s); this write only tidies.
  await core.persist(s);
  return s;
}

/** A thin, writable blob whose parent is the read-only blob s. */
export async function cloneLocked(core: BlobstoreCore, s: BlobRecord, xattrs: Map<string, Uint8Array>): Promise<BlobRecord> {
  if (!s.readOnly) throw new BlobError('BLOB_NOT_READ_ONLY', `blob ${hex(s.id)} is writable: only read-only blobs can be cloned`);
  const c = newRecord(core, s.numClusters, xattrs);
  c.thin = true;
  c.parentId = s.id;
  c.map.parent = s.map;
  try {
    await core.persist(c);
  } catch (e) {
    dropNewRecord(core, c);
    throw e;
  }
  core.blobs.set(c.id, c);
  s.clones.add(c.id);
  return c;
}

/**
 * Gives `rec` its own copy of the clusters at `indices` (data read through its parent chain, or
 * zeroes), sets its parent to newParentId and persists. Clusters are written before metadata.
 */
async function copyUpLocked(core: BlobstoreCore, rec: BlobRecord, indices: number[], newParentId: number, thick: boolean): Promise<void> {
  const cs = core.layout.clusterSize;
  const clusters = core.allocClusters(indices.length);
  const saved = save(rec);
  const buf = new Uint8Array(cs);
  try {
    for (let k = 0; k < indices.length; k++) {
      await core.readParentCluster(rec, indices[k], buf);
      await core.device.write(clusters[k] * cs, buf);
    }
    indices.forEach((idx, k) => rec.map.setEntry(idx, clusters[k]));
    rec.parentId = newParentId;
    rec.map.parent = newParentId === BLOB_ID_NONE ? null : core.record(newParentId).map;
    if (thick) rec.thin = false;
    await core.persist(rec);
  } catch (e) {
    restore(rec, saved);
    core.releaseClusters(clusters);
    throw e;
  }
  reparent(core, rec, saved.parentId, newParentId);
}

/** Allocates every unallocated cluster (copying from the parent chain): no parent afterwards. */
export async function inflateLocked(core: BlobstoreCore, rec: BlobRecord): Promise<void> {
  if (rec.readOnly) throw new BlobError('BLOB_READ_ONLY', `blob ${hex(rec.id)} is read-only: cannot inflate`);
  const need: number[] = [];
  for (let i = 0; i < rec.numClusters; i++) if (rec.map.entry(i) === 0) need.push(i);
  if (need.length === 0 && rec.parentId === BLOB_ID_NONE && !rec.thin) return;
  await copyUpLocked(core, rec, need, BLOB_ID_NONE, true);
}

/** Copies only the clusters the parent itself holds; the grandparent becomes the parent. */
export async function decoupleParentLocked(core: BlobstoreCore, rec: BlobRecord): Promise<void> {
  if (rec.parentId === BLOB_ID_NONE) throw new BlobError('NO_PARENT', `blob ${hex(rec.id)} has no parent to decouple from`);
  if (rec.readOnly) throw new BlobError('BLOB_READ_ONLY', `blob ${hex(rec.id)} is read-only: cannot decouple`);
  const p = core.record(rec.parentId);
  const need: number[] = [];
  const n = Math.min(rec.numClusters, p.numClusters);
  for (let i = 0; i < n; i++) if (rec.map.entry(i) === 0 && p.map.entry(i) !== 0) need.push(i);
  // Beyond the parent's size rec reads zeroes; the grandparent may be larger: copy those zeroes.
  need.push(...unmaskedByReparent(rec, p.numClusters, p.map.parent));
  await copyUpLocked(core, rec, need, p.parentId, false);
}
