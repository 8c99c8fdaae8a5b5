// The blobstore: thin-provisioned, snapshottable blobs of clusters on one BlobDevice. Metadata
// changes run one at a time in a queue, each persisted (crash-safe) before its promise resolves;
// data I/O runs concurrently and joins the queue only to allocate clusters on first write.
// Operations that move clusters under a blob (snapshot, inflate, decouple, resize, merge on
// delete) first freeze that blob's I/O, so no I/O is in flight while its map changes.
import { BlobError } from './blob-error.ts';
import type { BlobDevice } from './blob-device.ts';
import { Bitmap } from './bitmap.ts';
import { Blob } from './blob.ts';
import type { BlobRecord } from './blob-record.ts';
import type { BlobstoreCore } from './blobstore-core.ts';
import { formatCore, formatUuid, type FormatOptions } from './blobstore-init.ts';
import { loadCore, type LoadOptions } from './blobstore-load.ts';
import { BLOB_ID_NONE, BS_MASK_HEADER_SIZE, BS_PAGE_SIZE, computeLayout, type BlobstoreLayout } from './blobstore-layout.ts';
import {
  createBlobLocked, deleteBlobLocked, removeXattrLocked, resizeBlobLocked, setReadOnlyLocked, setXattrLocked,
} from './blob-lifecycle.ts';
import { cloneLocked, decoupleParentLocked, inflateLocked, snapshotLocked } from './blob-snapshot.ts';
import { allocateClustersLocked, readBlobData, writeBlobData } from './blob-io.ts';
import type { ClusterMap, ClusterMapSpec } from './cluster-map.ts';

export type XattrInput = Record<string, string | Uint8Array>;

export interface BlobCreateOptions {
  numClusters?: number;
  /** Allocate clusters on first write (default true); false allocates them all now. */
  thin?: boolean;
  xattrs?: XattrInput;
}

export interface ResizeOptions {
  /** Refuse (WOULD_DROP_DATA) a shrink that would drop allocated clusters. */
  preserveAllocated?: boolean;
}

/** A snapshot of the blobstore's state for checks and tests (copies, not live views). */
export interface BlobstoreInspection {
  layout: BlobstoreLayout;
  usedClusters: Bitmap;
  usedPages: Bitmap;
  usedBlobIds: Bitmap;
  blobs: Array<{
    id: number; rootPage: number; chainPages: number[]; clusters: Uint32Array; parentId: number;
    cloneIds: number[]; readOnly: boolean; thin: boolean; pendingKind: number;
  }>;
}

function xattrMap(x: XattrInput | undefined): Map<string, Uint8Array> {
  const m = new Map<string, Uint8Array>();
  for (const [k, v] of Object.entries(x ?? {})) m.set(k, typeof v === 'string' ? new TextEncoder().encode(v) : v.slice());
  return m;
}

export class Blobstore {
  readonly #core: BlobstoreCore;
  /** False when the last load found the store dirty (metadata replayed). True after create. */
  readonly loadedClean: boolean;
  /** Actions recovery took at load (finished or undone interrupted operations). */
  readonly recovered: readonly string[];

  private constructor(core: BlobstoreCore, loadedClean: boolean, recovered: string[]) {
    this.#core = core;
    this.loadedClean = loadedClean;
    this.recovered = recovered;
  }

  /** Formats `device` as an empty blobstore (destroying what it held). */
  static async create(device: BlobDevice, opts: FormatOptions = {}): Promise<Blobstore> {
    return new Blobstore(await formatCore(device, opts), true, []);
  }

  /** Loads the blobstore on `device`, replaying metadata if it was not unloaded cleanly. */
  static async load(device: BlobDevice, opts: LoadOptions = {}): Promise<Blobstore> {
    const r = await loadCore(device, opts);
    return new Blobstore(r.core, r.wasClean, r.recovered);
  }

  get clusterSize(): number {
    return this.#core.layout.clusterSize;
  }
  /** The I/O unit: offsets and lengths of blob I/O are multiples of it. */
  get ioUnitSize(): number {
    return this.#core.device.blockSize;
  }
  get totalClusters(): number {
    return this.#core.layout.totalClusters;
  }
  /** Clusters available to blobs (excludes the metadata area). */
  get totalDataClusters(): number {
    return this.#core.layout.totalClusters - this.#core.layout.reservedClusters;
  }
  get freeClusters(): number {
    return this.#core.freeClusters;
  }
  get bstype(): string {
    return this.#core.bstype;
  }
  get uuid(): string {
    return formatUuid(this.#core.uuid);
  }
  get superBlobId(): number {
    return this.#core.superBlobId;
  }

  /** Ids of all blobs, ascending. */
  blobIds(): number[] {
    this.#core.checkLoaded();
    return [...this.#core.blobs.keys()].sort((a, b) => a - b);
  }

  #rec(blob: Blob): BlobRecord {
    this.#core.checkLoaded();
    if (!blob.isOpen) throw new BlobError('BLOB_CLOSED', `handle on blob 0x${blob.id.toString(16)} is closed`);
    if (this.#core.blobs.get(blob.id) !== blob.record) {
      throw new BlobError('BLOB_NOT_FOUND', `blob 0x${blob.id.toString(16)} does not belong to this blobstore`);
    }
    return blob.record;
  }

  /** Runs fn in the metadata queue with the I/O of `recs` frozen (frozen first: see io-gate.ts). */
  async #frozen<T>(recs: BlobRecord[], fn: () => Promise<T>): Promise<T> {
    for (const r of recs) await r.gate.freeze();
    try {
      return await this.#core.queue.run(async () => {
        this.#core.checkLoaded();
        return fn();
      });
    } finally {
      for (const r of recs) r.gate.thaw();
    }
  }

  #locked<T>(fn: () => Promise<T>): Promise<T> {
    return this.#frozen([], fn);
  }

  async setSuperBlob(id: number): Promise<void> {
    await this.#locked(async () => {
      if (id !== BLOB_ID_NONE) this.#core.record(id);
      const prev = this.#core.superBlobId;
      this.#core.superBlobId = id;
      try {
        await this.#core.writeSuper(false);
      } catch (e) {
        this.#core.superBlobId = prev;
        throw e;
      }
    });
  }

  async createBlob(opts: BlobCreateOptions = {}): Promise<number> {
    const xattrs = xattrMap(opts.xattrs);
    const rec = await this.#locked(() => createBlobLocked(this.#core, opts.numClusters ?? 0, opts.thin ?? true, xattrs));
    return rec.id;
  }

  openBlob(id: number): Blob {
    this.#core.checkLoaded();
    return new Blob(this.#core.record(id));
  }

  /** Deletes a closed blob. A blob with one clone is merged into it; with more, HAS_CLONES. */
  async deleteBlob(id: number): Promise<void> {
    this.#core.checkLoaded();
    const rec = this.#core.record(id);
    const clone = rec.clones.size === 1 ? this.#core.blobs.get([...rec.clones][0]) : undefined;
    // The blob's own gate too: a handle closed with I/O still queued must not outlive the blob.
    await this.#frozen(clone ? [rec, clone] : [rec], async () => {
      if (this.#core.record(id) !== rec) throw new BlobError('BLOB_NOT_FOUND', `blob 0x${id.toString(16)} was deleted meanwhile`);
      if (rec.clones.size === 1 && !rec.clones.has(clone?.id ?? -1)) {
        throw new BlobError('BLOB_IN_USE', `blob 0x${id.toString(16)} gained a clone meanwhile; retry`);
      }
      await deleteBlobLocked(this.#core, rec);
    });
  }

  async resizeBlob(blob: Blob, numClusters: number, opts: ResizeOptions = {}): Promise<void> {
    const rec = this.#rec(blob);
    await this.#frozen([rec], () => resizeBlobLocked(this.#core, rec, numClusters, opts.preserveAllocated ?? false));
  }

  async setXattr(blob: Blob, name: string, value: string | Uint8Array): Promise<void> {
    const rec = this.#rec(blob);
    const v = typeof value === 'string' ? new TextEncoder().encode(value) : value;
    await this.#locked(() => setXattrLocked(this.#core, rec, name, v));
  }

  async removeXattr(blob: Blob, name: string): Promise<void> {
    const rec = this.#rec(blob);
    await this.#locked(() => removeXattrLocked(this.#core, rec, name));
  }

  /** Irreversible: the blob's data and size are frozen from now on (it may then be cloned). */
  async setReadOnly(blob: Blob): Promise<void> {
    const rec = this.#rec(blob);
    await this.#frozen([rec], () => setReadOnlyLocked(this.#core, rec));
  }

  /** Read-only snapshot of the blob's current data; the blob becomes its thin clone. */
  async createSnapshot(blob: Blob, opts: { xattrs?: XattrInput } = {}): Promise<number> {
    const rec = this.#rec(blob);
    const xattrs = xattrMap(opts.xattrs);
    return (await this.#frozen([rec], () => snapshotLocked(this.#core, rec, xattrs))).id;
  }

  /** Thin writable clone of a read-only blob. */
  async createClone(snapshot: Blob, opts: { xattrs?: XattrInput } = {}): Promise<number> {
    const rec = this.#rec(snapshot);
    const xattrs = xattrMap(opts.xattrs);
    return (await this.#locked(() => cloneLocked(this.#core, rec, xattrs))).id;
  }

  /** Allocates every cluster (copying from the parent chain); the blob no longer has a parent. */
  async inflateBlob(blob: Blob): Promise<void> {
    const rec = this.#rec(blob);
    await this.#frozen([rec], () => inflateLocked(this.#core, rec));
  }

  /** Copies the clusters the parent holds; the grandparent becomes the parent. */
  async decoupleParent(blob: Blob): Promise<void> {
    const rec = this.#rec(blob);
    await this.#frozen([rec], () => decoupleParentLocked(this.#core, rec));
  }

  /** Reads len bytes at offsetBytes into dst; unallocated ranges come from the parent or are zero. */
  async readBlob(blob: Blob, offsetBytes: number, len: number, dst: Uint8Array): Promise<void> {
    return readBlobData(this.#core, this.#rec(blob), offsetBytes, len, dst);
  }

  /** Writes src at offsetBytes, allocating (copy-on-write) clusters on first write. */
  async writeBlob(blob: Blob, offsetBytes: number, src: Uint8Array): Promise<void> {
    return writeBlobData(this.#core, this.#rec(blob), offsetBytes, src);
  }

  /**
   * Allocates the blob's clusters at `indices` that are not yet allocated (copy-on-write from the
   * parent, else zeroes), with one metadata write for all: how a data path that found an
   * unallocated cluster asks for it. Needs no freeze: entries are published after the metadata
   * write, each atomically. Returns how many clusters were allocated.
   */
  async allocateClusters(blob: Blob, indices: readonly number[]): Promise<number> {
    const rec = this.#rec(blob);
    await rec.gate.enter();
    try {
      return await this.#core.queue.run(() => allocateClustersLocked(this.#core, rec, indices));
    } finally {
      rec.gate.leave();
    }
  }

  /** The blob's live cluster map (its parent chain linked), for data-path translation. */
  clusterMap(blob: Blob): ClusterMap {
    return this.#rec(blob).map;
  }

  /** A structured-cloneable description of the map chain, for a reactor thread. */
  clusterMapSpec(blob: Blob): ClusterMapSpec {
    return this.#rec(blob).map.spec();
  }

  inspect(): BlobstoreInspection {
    const c = this.#core;
    return {
      layout: { ...c.layout },
      usedClusters: c.usedClusters.clone(),
      usedPages: c.usedPages.clone(),
      usedBlobIds: c.usedBlobIds.clone(),
      blobs: [...c.blobs.values()].map((r) => ({
        id: r.id, rootPage: r.rootPage, chainPages: [...r.chainPages], clusters: r.map.entries(), parentId: r.parentId,
        cloneIds: [...r.clones].sort((a, b) => a - b), readOnly: r.readOnly, thin: r.thin, pendingKind: r.pendingKind,
      })),
    };
  }

  /**
   * Extends the blobstore over the whole device after the device grew. The on-disk layout fixes
   * the cluster mask's page count at format, so it grows up to what those pages can describe
   * (32,640 clusters per mask page). The super block write (one 4 KiB page) is the commit point;
   * a crash before it leaves the old size. Returns the clusters added.
   */
  async grow(): Promise<number> {
    return this.#locked(async () => {
      const c = this.#core;
      const old = c.layout;
      const devBytes = c.device.blockSize * c.device.numBlocks;
      const grown = computeLayout(devBytes, old.clusterSize, old.mdLen);
      if (grown.totalClusters <= old.totalClusters) return 0;
      if (grown.usedClusterMaskLen !== old.usedClusterMaskLen) {
        const fits = (old.usedClusterMaskLen * BS_PAGE_SIZE - BS_MASK_HEADER_SIZE) * 8;
        throw new BlobError(
          'CANNOT_GROW',
          `the cluster mask holds ${fits} clusters (${fits * old.clusterSize} bytes); the device's ${devBytes} bytes need ${grown.totalClusters}`,
        );
      }
      const used = new Bitmap(grown.totalClusters, c.usedClusters.bits);
      const prevLayout = c.layout;
      const prevUsed = c.usedClusters;
      c.layout = grown;
      c.usedClusters = used;
      try {
        await c.writeSuper(false);
      } catch (e) {
        c.layout = prevLayout;
        c.usedClusters = prevUsed;
        throw e;
      }
      return grown.totalClusters - old.totalClusters;
    });
  }

  /** Writes the bitmaps, then the super block marked clean. Refused while blobs are open. */
  async unload(): Promise<void> {
    await this.#locked(async () => {
      const open = [...this.#core.blobs.values()].filter((r) => r.openCount > 0);
      if (open.length > 0) {
        throw new BlobError('BLOB_IN_USE', `cannot unload: ${open.length} blob(s) open (0x${open[0].id.toString(16)}, ...)`);
      }
      await this.#core.writeMasks();
      await this.#core.writeSuper(true);
      this.#core.unloaded = true;
    });
  }
}
