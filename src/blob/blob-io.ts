// Data I/O on a blob from the control plane: split at cluster boundaries, translate each piece
// with the same pure functions a reactor uses (cluster-map.ts), and allocate on first write.
// Allocation runs in the metadata queue: the new cluster is filled (the written bytes over the
// parent's data or zeroes: copy-on-write), then the metadata is persisted, then the entry is
// published in the shared map.
import { BlobError } from './blob-error.ts';
import type { BlobRecord } from './blob-record.ts';
import type { BlobstoreCore } from './blobstore-core.ts';
import { bytesToClusterEnd, TRANSLATE_OUT_OF_RANGE, translateOwn, translateRead } from './cluster-map.ts';

function checkRange(core: BlobstoreCore, rec: BlobRecord, offset: number, len: number, bufLen: number): void {
  const unit = core.device.blockSize;
  const size = rec.numClusters * core.layout.clusterSize;
  if (
    !Number.isSafeInteger(offset) || !Number.isSafeInteger(len) || offset < 0 || len < 0 ||
    offset % unit !== 0 || len % unit !== 0 || offset + len > size || bufLen < len
  ) {
    throw new BlobError(
      'OUT_OF_RANGE',
      `blob 0x${rec.id.toString(16)} I/O [${offset}, +${len}) with a ${bufLen}-byte buffer: must be ${unit}-byte aligned within ${size} bytes`,
    );
  }
}

/** A handle closed with I/O still queued may see its blob deleted meanwhile. */
function checkAlive(rec: BlobRecord): void {
  if (rec.deleted) throw new BlobError('BLOB_NOT_FOUND', `blob 0x${rec.id.toString(16)} was deleted`);
}

export async function readBlobData(core: BlobstoreCore, rec: BlobRecord, offset: number, len: number, dst: Uint8Array): Promise<void> {
  await rec.gate.enter();
  try {
    checkAlive(rec);
    checkRange(core, rec, offset, len, dst.length);
    let pos = 0;
    while (pos < len) {
      const off = offset + pos;
      const piece = Math.min(len - pos, bytesToClusterEnd(rec.map, off));
      const at = translateRead(rec.map, off);
      if (at >= 0) await core.device.read(at, piece, dst.subarray(pos, pos + piece));
      else dst.fill(0, pos, pos + piece);
      pos += piece;
    }
  } finally {
    rec.gate.leave();
  }
}

interface Piece {
  blobOffset: number;
  srcPos: number;
  len: number;
}

export async function writeBlobData(core: BlobstoreCore, rec: BlobRecord, offset: number, src: Uint8Array): Promise<void> {
  await rec.gate.enter();
  try {
    checkAlive(rec);
    if (rec.readOnly) throw new BlobError('BLOB_READ_ONLY', `blob 0x${rec.id.toString(16)} is read-only`);
    checkRange(core, rec, offset, src.length, src.length);
    const unallocated: Piece[] = [];
    let pos = 0;
    while (pos < src.length) {
      const off = offset + pos;
      const piece = Math.min(src.length - pos, bytesToClusterEnd(rec.map, off));
      const at = translateOwn(rec.map, off);
      if (at >= 0) await core.device.write(at, src.subarray(pos, pos + piece));
      else unallocated.push({ blobOffset: off, srcPos: pos, len: piece });
      pos += piece;
    }
    if (unallocated.length > 0) await core.queue.run(() => allocateAndWriteLocked(core, rec, unallocated, src));
  } finally {
    rec.gate.leave();
  }
}

async function allocateAndWriteLocked(core: BlobstoreCore, rec: BlobRecord, pieces: Piece[], src: Uint8Array): Promise<void> {
  core.checkLoaded();
  checkAlive(rec);
  const cs = core.layout.clusterSize;
  const todo: Piece[] = [];
  for (const p of pieces) {
    // Another write may have allocated the cluster while this one waited for the queue.
    const at = translateOwn(rec.map, p.blobOffset);
    if (at === TRANSLATE_OUT_OF_RANGE) throw new BlobError('OUT_OF_RANGE', `blob 0x${rec.id.toString(16)} shrank under a write`);
    if (at >= 0) await core.device.write(at, src.subarray(p.srcPos, p.srcPos + p.len));
    else todo.push(p);
  }
  if (todo.length === 0) return;
  const clusters = core.allocClusters(todo.length);
  try {
    const entries = rec.map.entries();
    for (let k = 0; k < todo.length; k++) {
      const p = todo[k];
      const idx = Math.floor(p.blobOffset / cs);
      let data: Uint8Array;
      if (p.len === cs) {
        data = src.subarray(p.srcPos, p.srcPos + cs);
      } else {
        data = new Uint8Array(cs);
        await core.readParentCluster(rec, idx, data);
        data.set(src.subarray(p.srcPos, p.srcPos + p.len), p.blobOffset - idx * cs);
      }
      await core.device.write(clusters[k] * cs, data);
      entries[idx] = clusters[k];
    }
    await core.persist(rec, entries);
    // Published only now: a reader never reaches a cluster whose data or metadata is not on disk.
    for (let k = 0; k < todo.length; k++) rec.map.setEntry(Math.floor(todo[k].blobOffset / cs), clusters[k]);
  } catch (e) {
    core.releaseClusters(clusters);
    throw e;
  }
}

/**
 * Gives rec its own cluster at each blob cluster index in `indices` not yet allocated, filled with
 * what a read of it returned before (the parent chain's data, or zeroes), and persists the map
 * once for all of them before publishing: the data path's first-write allocation. Returns how
 * many clusters it allocated (indices allocated meanwhile are skipped).
 */
export async function allocateClustersLocked(core: BlobstoreCore, rec: BlobRecord, indices: readonly number[]): Promise<number> {
  core.checkLoaded();
  checkAlive(rec);
  if (rec.readOnly) throw new BlobError('BLOB_READ_ONLY', `blob 0x${rec.id.toString(16)} is read-only`);
  const todo: number[] = [];
  for (const idx of indices) {
    if (!Number.isInteger(idx) || idx < 0 || idx >= rec.numClusters) {
      throw new BlobError('OUT_OF_RANGE', `cluster ${idx} outside blob 0x${rec.id.toString(16)} of ${rec.numClusters}`);
    }
    if (rec.map.entry(idx) === 0 && !todo.includes(idx)) todo.push(idx);
  }
  if (todo.length === 0) return 0;
  const cs = core.layout.clusterSize;
  const clusters = core.allocClusters(todo.length);
  try {
    const entries = rec.map.entries();
    let buf: Uint8Array | null = null;
    for (let k = 0; k < todo.length; k++) {
      const idx = todo[k];
      const from = core.parentClusterOffset(rec, idx);
      if (from >= 0) {
        buf ??= new Uint8Array(cs);
        await core.device.read(from, cs, buf);
        await core.device.write(clusters[k] * cs, buf);
      } else if (core.clearByUnmap) {
        // A free cluster may hold a dead blob's data: clear it before it is readable as zeroes.
        await core.device.unmap(clusters[k] * cs, cs);
      } else {
        buf ??= new Uint8Array(cs);
        buf.fill(0);
        await core.device.write(clusters[k] * cs, buf);
      }
      entries[idx] = clusters[k];
    }
    await core.persist(rec, entries);
    for (let k = 0; k < todo.length; k++) rec.map.setEntry(todo[k], clusters[k]);
  } catch (e) {
    core.releaseClusters(clusters);
    throw e;
  }
  return todo.length;
}
