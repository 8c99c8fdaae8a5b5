// Create, resize, xattrs, read-only and delete (including delete of a snapshot whose one clone
// absorbs its clusters). Each function runs inside the metadata queue (the "Locked" suffix) and
// leaves memory as it found it when a device write fails.
import { BlobError } from './blob-error.ts';
import { BlobRecord } from './blob-record.ts';
import type { BlobstoreCore } from './blobstore-core.ts';
import { BLOB_ID_NONE, BLOB_MAX_CLUSTERS, blobIdOfPage } from './blobstore-layout.ts';
import { checkXattr, PENDING_NONE, PENDING_REMOVAL_INTO } from './blob-md-codec.ts';
import { translateRead, type ClusterMap } from './cluster-map.ts';

export function checkNumClusters(n: number): void {
  if (!Number.isSafeInteger(n) || n < 0 || n > BLOB_MAX_CLUSTERS) {
    throw new BlobError('INVALID_ARGUMENT', `cluster count ${n} must be an integer in [0, ${BLOB_MAX_CLUSTERS}]`);
  }
}

/** A new blob record with its root page and id taken (not yet persisted). */
export function newRecord(core: BlobstoreCore, numClusters: number, xattrs: Map<string, Uint8Array>): BlobRecord {
  for (const [k, v] of xattrs) checkXattr(k, v);
  const page = core.allocPage();
  core.usedBlobIds.set(page);
  const rec = new BlobRecord(blobIdOfPage(page), page, core.layout.clusterSize, numClusters);
  for (const [k, v] of xattrs) rec.xattrs.set(k, v);
  return rec;
}

/** Gives back the root page and id of a record whose root was never written. */
export function dropNewRecord(core: BlobstoreCore, rec: BlobRecord): void {
  core.releasePages([rec.rootPage, ...rec.chainPages]);
  core.usedBlobIds.clear(rec.rootPage);
}

export async function createBlobLocked(
  core: BlobstoreCore, numClusters: number, thin: boolean, xattrs: Map<string, Uint8Array>,
): Promise<BlobRecord> {
  checkNumClusters(numClusters);
  const rec = newRecord(core, numClusters, xattrs);
  rec.thin = thin;
  let clusters: number[] = [];
  try {
    if (!thin) {
      clusters = core.allocClusters(numClusters);
      clusters.forEach((c, i) => rec.map.setEntry(i, c));
      // A cluster may hold a dead blob's data or an uncommitted write from before a crash.
      await core.unmapClusters(clusters);
    }
    await core.persist(rec);
  } catch (e) {
    core.releaseClusters(clusters);
    dropNewRecord(core, rec);
    throw e;
  }
  core.blobs.set(rec.id, rec);
  return rec;
}

export async function resizeBlobLocked(core: BlobstoreCore, rec: BlobRecord, n: number, preserveAllocated: boolean): Promise<void> {
  checkNumClusters(n);
  if (rec.readOnly) throw new BlobError('BLOB_READ_ONLY', `blob 0x${rec.id.toString(16)} is read-only: cannot resize`);
  const old = rec.map.entries();
  if (n === old.length) return;
  if (n > old.length) {
    // Thick blobs get their clusters now; thin ones on first write. Clusters before metadata.
    const added = rec.thin ? [] : core.allocClusters(n - old.length);
    rec.map.resize(n);
    added.forEach((c, i) => rec.map.setEntry(old.length + i, c));
    try {
      await core.unmapClusters(added);
      await core.persist(rec);
    } catch (e) {
      rec.map.assign(old);
      core.releaseClusters(added);
      throw e;
    }
    return;
  }
  const dropped = Array.from(old.subarray(n)).filter((c) => c !== 0);
  if (preserveAllocated && dropped.length > 0) {
    throw new BlobError(
      'WOULD_DROP_DATA',
      `shrinking blob 0x${rec.id.toString(16)} to ${n} clusters would drop ${dropped.length} allocated cluster(s)`,
    );
  }
  rec.map.resize(n);
  try {
    await core.persist(rec);
  } catch (e) {
    rec.map.assign(old);
    throw e;
  }
  // Released only once no metadata on disk references them.
  await core.discardClusters(dropped);
}

export async function setXattrLocked(core: BlobstoreCore, rec: BlobRecord, name: string, value: Uint8Array): Promise<void> {
  checkXattr(name, value);
  const prev = rec.xattrs.get(name);
  rec.xattrs.set(name, value.slice());
  try {
    await core.persist(rec);
  } catch (e) {
    if (prev) rec.xattrs.set(name, prev);
    else rec.xattrs.delete(name);
    throw e;
  }
}

export async function removeXattrLocked(core: BlobstoreCore, rec: BlobRecord, name: string): Promise<void> {
  const prev = rec.xattrs.get(name);
  if (!prev) throw new BlobError('XATTR_NOT_FOUND', `blob 0x${rec.id.toString(16)} has no xattr "${name}"`);
  rec.xattrs.delete(name);
  try {
    await core.persist(rec);
  } catch (e) {
    rec.xattrs.set(name, prev);
    throw e;
  }
}

export async function setReadOnlyLocked(core: BlobstoreCore, rec: BlobRecord): Promise<void> {
  if (rec.readOnly) return;
  rec.readOnly = true;
  try {
    await core.persist(rec);
  } catch (e) {
    rec.readOnly = false;
    throw e;
  }
}

/**
 * Clusters of rec that read as zeroes only because the old parent is smaller than rec (reads
 * beyond an ancestor's size are zeroes) but would read data through `newParent`: when the old
 * parent leaves the chain, rec needs zero-filled clusters of its own there to keep its contents.
 */
export function unmaskedByReparent(rec: BlobRecord, oldParentClusters: number, newParent: ClusterMap | null): number[] {
  const out: number[] = [];
  if (!newParent) return out;
  const cs = rec.map.clusterSize;
  for (let i = oldParentClusters; i < rec.numClusters; i++) {
    if (rec.map.entry(i) === 0 && translateRead(newParent, i * cs) >= 0) out.push(i);
  }
  return out;
}

/** Forgets a blob whose metadata is gone from disk (or will be found gone at the next load). */
function forget(core: BlobstoreCore, rec: BlobRecord): void {
  if (rec.parentId !== BLOB_ID_NONE) core.blobs.get(rec.parentId)?.clones.delete(rec.id);
  core.blobs.delete(rec.id);
  rec.deleted = true;
}

export async function deleteBlobLocked(core: BlobstoreCore, rec: BlobRecord): Promise<void> {
  const hex = rec.id.toString(16);
  if (rec.openCount > 0) throw new BlobError('BLOB_IN_USE', `blob 0x${hex} has ${rec.openCount} open handle(s)`);
  if (rec.clones.size > 1) throw new BlobError('HAS_CLONES', `blob 0x${hex} has ${rec.clones.size} clones`);
  if (rec.clones.size === 1) {
    await mergeIntoCloneLocked(core, rec, core.record([...rec.clones][0]));
  } else {
    await core.eraseMd(rec);
    forget(core, rec);
    await core.discardClusters(rec.ownedClusters());
  }
  if (core.superBlobId === rec.id) {
    core.superBlobId = BLOB_ID_NONE;
    await core.writeSuper(false);
  }
}

/**
 * Deletes snapshot s whose only clone is c: c takes every cluster of s it does not have itself and
 * s's parent. Crash-safe through a marker on s (PENDING_REMOVAL_INTO c) written first: a load that
 * finds the marker finishes the removal if c no longer points at s, else just clears the marker.
 */
async function mergeIntoCloneLocked(core: BlobstoreCore, s: BlobRecord, c: BlobRecord): Promise<void> {
  const cs = core.layout.clusterSize;
  // Clusters c must own as zeroes once s (smaller than c) no longer cuts its parent chain short.
  const zeroed = unmaskedByReparent(c, s.numClusters, s.map.parent);
  const fresh = core.allocClusters(zeroed.length);
  try {
    const zero = new Uint8Array(fresh.length ? cs : 0);
    for (const f of fresh) await core.device.write(f * cs, zero);
    s.pendingKind = PENDING_REMOVAL_INTO;
    s.pendingOther = c.id;
    await core.persist(s);
  } catch (e) {
    core.releaseClusters(fresh);
    s.pendingKind = PENDING_NONE;
    s.pendingOther = BLOB_ID_NONE;
    throw e;
  }
  const oldEntries = c.map.entries();
  const oldParentId = c.parentId;
  const oldParentMap = c.map.parent;
  const moved = new Set<number>();
  const n = Math.min(c.numClusters, s.numClusters);
  for (let i = 0; i < n; i++) {
    const own = s.map.entry(i);
    if (c.map.entry(i) === 0 && own !== 0) {
      c.map.setEntry(i, own);
      moved.add(own);
    }
  }
  zeroed.forEach((idx, k) => c.map.setEntry(idx, fresh[k]));
  c.parentId = s.parentId;
  c.map.parent = s.map.parent;
  try {
    await core.persist(c);
  } catch (e) {
    core.releaseClusters(fresh);
    c.map.assign(oldEntries);
    c.parentId = oldParentId;
    c.map.parent = oldParentMap;
    s.pendingKind = PENDING_NONE;
    s.pendingOther = BLOB_ID_NONE;
    await core.persist(s).catch(() => undefined);
    throw e;
  }
  // From here c owns the moved clusters. If erasing s fails, s's pages and remaining clusters are
  // leaked (a load finishes the removal), never reused while s's root may still be on disk.
  const parent = s.parentId !== BLOB_ID_NONE ? core.blobs.get(s.parentId) : undefined;
  s.clones.clear();
  forget(core, s);
  if (parent) parent.clones.add(c.id);
  await core.eraseMd(s);
  await core.discardClusters(s.ownedClusters().filter((x) => !moved.has(x)));
}
