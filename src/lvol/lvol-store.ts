// A logical volume store: a blobstore on one base bdev (claimed), named and identified by a UUID
// kept in the super blob's xattrs, holding lvols (blobs with "name" and "uuid" xattrs) that are
// registered as bdevs. Operations that change a blob's cluster map under running I/O quiesce the
// lvols whose reactor channels read that map, then publish the new map before I/O resumes.
import { randomUUID } from 'node:crypto';
import type { Bdev } from '../bdev/bdev.ts';
import type { BdevRegistry } from '../bdev/bdev-registry.ts';
import { openBdevChannel } from '../bdev/channel-open.ts';
import type { Blob } from '../blob/blob.ts';
import { Blobstore } from '../blob/blobstore.ts';
import { BlobError } from '../blob/blob-error.ts';
import { BS_PAGE_SIZE } from '../blob/blobstore-layout.ts';
import { componentLogger } from '../log/logger.ts';
import { BdevBlobDevice } from './bdev-blob-device.ts';
import { LvolBdev } from './lvol-bdev.ts';
import { LvolError, type LvolErrorCode } from './lvol-error.ts';

const log = componentLogger('lvol');

export const LVS_BSTYPE = 'LVOLSTORE';
/** SPDK's default lvstore cluster size. */
export const LVS_DEFAULT_CLUSTER_SIZE = 4 * 1024 * 1024;
/** SPDK_LVS_NAME_MAX / SPDK_LVOL_NAME_MAX minus the terminating NUL. */
export const LVOL_NAME_MAX = 63;
export const XATTR_NAME = 'name';
export const XATTR_UUID = 'uuid';
/** How the lvol's clusters are cleared when it is deleted (absent: the store's unmap). */
export const XATTR_CLEAR_METHOD = 'clear_method';
/** Clusters allocated per step of inflate/decouple (I/O keeps running between steps). */
const COPY_STEP_CLUSTERS = 4;

export type ClearMethod = 'none' | 'unmap' | 'write_zeroes';
export type ProgressFn = (done: number, total: number) => void;

export interface LvolStoreCreateOptions {
  name: string;
  clusterSize?: number;
  clearMethod?: ClearMethod;
  /** Metadata pages per 100 clusters (SPDK's num_md_pages_per_cluster_ratio); default 100. */
  mdPagesPerClusterRatio?: number;
}

export function checkLvolName(what: string, name: unknown): string {
  if (typeof name !== 'string' || name.length === 0) throw new LvolError('LVOL_INVALID_PARAM', `${what} must not be empty`);
  if (name.length > LVOL_NAME_MAX) throw new LvolError('LVOL_INVALID_PARAM', `${what} '${name}' is longer than ${LVOL_NAME_MAX} characters`);
  if (name.includes('/') || /[\u0000-\u001f\u007f]/.test(name)) {
    throw new LvolError('LVOL_INVALID_PARAM', `${what} '${name}' must not contain '/' or control characters`);
  }
  return name;
}

/** Maps blobstore errors onto lvol codes; everything else passes through. */
export function lvolErrorOf(e: unknown, what: string): unknown {
  if (!(e instanceof BlobError)) return e;
  const map: Partial<Record<string, LvolErrorCode>> = {
    NO_SPACE: 'LVOL_NO_SPACE', NO_MD_SPACE: 'LVOL_NO_SPACE', HAS_CLONES: 'LVOL_HAS_CLONES', BLOB_IN_USE: 'LVOL_IN_USE',
    BLOB_READ_ONLY: 'LVOL_READ_ONLY', BLOB_NOT_READ_ONLY: 'LVOL_NOT_READ_ONLY', NO_PARENT: 'LVOL_NO_PARENT',
    WOULD_DROP_DATA: 'LVOL_WOULD_DROP_DATA', INVALID_ARGUMENT: 'LVOL_INVALID_PARAM',
  };
  return new LvolError(map[e.code] ?? 'LVOL_IO_ERROR', `${what}: ${e.message}`);
}

/** Writes zeroes over whole clusters, one at a time, reporting progress (clear_method write_zeroes). */
async function zeroClusters(device: BdevBlobDevice, clusterSize: number, clusters: number[], progress?: ProgressFn): Promise<void> {
  for (let i = 0; i < clusters.length; i++) {
    await device.writeZeroes(clusters[i] * clusterSize, clusterSize);
    progress?.(i + 1, clusters.length);
  }
}

export class LvolStore {
  readonly baseBdev: Bdev;
  readonly blobstore: Blobstore;
  readonly #device: BdevBlobDevice;
  readonly #bdevs: BdevRegistry;
  readonly #superBlob: Blob;
  #name: string;
  readonly uuid: string;
  /** blob id -> lvol. */
  readonly #lvols = new Map<number, LvolBdev>();
  #closed = false;

  private constructor(bdevs: BdevRegistry, base: Bdev, device: BdevBlobDevice, bs: Blobstore, superBlob: Blob, name: string, uuid: string) {
    this.#bdevs = bdevs;
    this.baseBdev = base;
    this.#device = device;
    this.blobstore = bs;
    this.#superBlob = superBlob;
    this.#name = name;
    this.uuid = uuid;
  }

  get name(): string {
    return this.#name;
  }
  get blockSize(): number {
    return this.blobstore.ioUnitSize;
  }
  get clusterSize(): number {
    return this.blobstore.clusterSize;
  }

  static #openDevice(base: Bdev): BdevBlobDevice {
    return new BdevBlobDevice(openBdevChannel(base.channelSpec()), base.unmapReadsZero, base.ioTypes.flush);
  }

  /** Formats `base` as a new lvol store. The caller has checked the name is free and claimed nothing. */
  static async create(bdevs: BdevRegistry, base: Bdev, opts: LvolStoreCreateOptions, progress?: ProgressFn): Promise<LvolStore> {
    const name = checkLvolName('lvs_name', opts.name);
    const clear = opts.clearMethod ?? 'unmap';
    const ratio = opts.mdPagesPerClusterRatio ?? 100;
    if (!Number.isInteger(ratio) || ratio < 1) throw new LvolError('LVOL_INVALID_PARAM', `num_md_pages_per_cluster_ratio ${ratio} must be >= 1`);
    const clusterSize = opts.clusterSize || LVS_DEFAULT_CLUSTER_SIZE;
    const totalClusters = Math.floor((base.numBlocks * base.blockSize) / clusterSize);
    bdevs.claim(base.name, 'lvol');
    let device: BdevBlobDevice | undefined;
    try {
      device = LvolStore.#openDevice(base);
      const bs = await Blobstore.create(device, {
        clusterSize, bstype: LVS_BSTYPE, unmapClusters: clear === 'unmap', mdPages: Math.max(1, Math.ceil((totalClusters * ratio) / 100)),
      }).catch((e: unknown) => {
        throw lvolErrorOf(e, `cannot create lvol store on '${base.name}'`);
      });
      if (clear === 'write_zeroes') {
        const first = bs.totalClusters - bs.totalDataClusters;
        await zeroClusters(device, clusterSize, Array.from({ length: bs.totalDataClusters }, (_, i) => first + i), progress);
      }
      const uuid = randomUUID();
      const sid = await bs.createBlob({ xattrs: { [XATTR_NAME]: name, [XATTR_UUID]: uuid } });
      await bs.setSuperBlob(sid);
      log.info({ lvs: name, uuid, base: base.name, clusterSize, clusters: bs.totalDataClusters }, 'lvol store created');
      return new LvolStore(bdevs, base, device, bs, bs.openBlob(sid), name, uuid);
    } catch (e) {
      device?.close();
      bdevs.release(base.name, 'lvol');
      throw e;
    }
  }

  /**
   * Loads the lvol store on `base` if it holds one (examine), registering its lvols; null when the
   * bdev holds no lvol store. A store left dirty is recovered (blobstore metadata replay).
   */
  static async load(bdevs: BdevRegistry, base: Bdev): Promise<LvolStore | null> {
    const device = LvolStore.#openDevice(base);
    let bs: Blobstore;
    try {
      bs = await Blobstore.load(device, { bstype: LVS_BSTYPE });
    } catch (e) {
      device.close();
      if (e instanceof BlobError && (e.code === 'BAD_SUPER' || e.code === 'BS_TYPE_MISMATCH' || e.code === 'DEVICE_TOO_SMALL')) return null;
      throw lvolErrorOf(e, `lvol store on '${base.name}' cannot be loaded`);
    }
    const superBlob = bs.superBlobId !== 0 ? bs.openBlob(bs.superBlobId) : undefined;
    const name = superBlob?.getXattrString(XATTR_NAME);
    const uuid = superBlob?.getXattrString(XATTR_UUID);
    if (!superBlob || !name || !uuid) {
      device.close();
      throw new LvolError('LVOL_IO_ERROR', `blobstore on '${base.name}' is an lvol store without a name or uuid in its super blob`);
    }
    bdevs.claim(base.name, 'lvol');
    const store = new LvolStore(bdevs, base, device, bs, superBlob, name, uuid);
    if (!bs.loadedClean) log.warn({ lvs: name, base: base.name, recovered: bs.recovered }, 'lvol store was not unloaded cleanly: metadata replayed');
    for (const id of bs.blobIds()) {
      if (id === bs.superBlobId) continue;
      const blob = bs.openBlob(id);
      const lname = blob.getXattrString(XATTR_NAME);
      const luuid = blob.getXattrString(XATTR_UUID);
      if (!lname || !luuid) {
        log.warn({ lvs: name, blob: id }, 'blob without lvol name or uuid: left alone');
        blob.close();
        continue;
      }
      store.#register(new LvolBdev(store, blob, lname, luuid));
    }
    log.info({ lvs: name, uuid, base: base.name, lvols: store.#lvols.size }, 'lvol store loaded');
    return store;
  }

  #register(lvol: LvolBdev): LvolBdev {
    this.#lvols.set(lvol.blob.id, lvol);
    try {
      this.#bdevs.register(lvol);
    } catch (e) {
      this.#lvols.delete(lvol.blob.id);
      lvol.blob.close();
      throw e;
    }
    return lvol;
  }

  /** Called by LvolBdev.destroy(). */
  forget(lvol: LvolBdev): void {
    if (this.#lvols.get(lvol.blob.id) === lvol) this.#lvols.delete(lvol.blob.id);
  }

  lvols(): LvolBdev[] {
    return [...this.#lvols.values()].sort((a, b) => a.blob.id - b.blob.id);
  }

  lvolOfBlob(id: number): LvolBdev | undefined {
    return this.#lvols.get(id);
  }

  lvolNamed(name: string): LvolBdev | undefined {
    for (const l of this.#lvols.values()) if (l.lvolName === name) return l;
    return undefined;
  }

  #checkNameFree(name: string): void {
    checkLvolName('lvol name', name);
    if (this.lvolNamed(name)) throw new LvolError('LVOL_NAME_TAKEN', `lvol store '${this.#name}' already has an lvol named '${name}'`);
  }

  #checkOpen(): void {
    if (this.#closed) throw new LvolError('LVOL_STORE_NOT_FOUND', `lvol store '${this.#name}' was deleted or unloaded`);
  }

  get freeClusters(): number {
    return this.blobstore.freeClusters;
  }

  async createLvol(name: string, sizeBytes: number, thin: boolean, clearMethod: ClearMethod = 'unmap'): Promise<LvolBdev> {
    this.#checkOpen();
    this.#checkNameFree(name);
    const numClusters = this.#clustersFor(sizeBytes);
    if (!thin && numClusters > this.freeClusters) {
      throw new LvolError('LVOL_NO_SPACE', `lvol '${name}' needs ${numClusters} clusters, lvol store '${this.#name}' has ${this.freeClusters} free`);
    }
    const uuid = randomUUID();
    let id: number;
    try {
      const xattrs: Record<string, string> = { [XATTR_NAME]: name, [XATTR_UUID]: uuid };
      if (clearMethod !== 'unmap') xattrs[XATTR_CLEAR_METHOD] = clearMethod;
      id = await this.blobstore.createBlob({ numClusters, thin, xattrs });
    } catch (e) {
      throw lvolErrorOf(e, `cannot create lvol '${name}'`);
    }
    return this.#register(new LvolBdev(this, this.blobstore.openBlob(id), name, uuid));
  }

  #clustersFor(sizeBytes: number): number {
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 0) throw new LvolError('LVOL_INVALID_PARAM', `size ${sizeBytes} is not a byte count`);
    return Math.ceil(sizeBytes / this.clusterSize);
  }

  /** Runs fn with the lvols' I/O stopped, then publishes their (possibly changed) maps and resumes. */
  async #quiesced<T>(lvols: LvolBdev[], fn: () => Promise<T>): Promise<T> {
    const done: LvolBdev[] = [];
    try {
      for (const l of lvols) {
        await l.quiesce();
        done.push(l);
      }
      return await fn();
    } finally {
      for (const l of done) {
        l.publish();
        l.resume();
      }
    }
  }

  /** Read-only snapshot of `lvol` (which becomes its clone), crash-consistent: I/O is drained first. */
  async snapshot(lvol: LvolBdev, snapshotName: string): Promise<LvolBdev> {
    this.#checkOpen();
    this.#checkNameFree(snapshotName);
    if (lvol.isSnapshot) throw new LvolError('LVOL_READ_ONLY', `lvol '${lvol.alias}' is read-only: clone it instead`);
    const uuid = randomUUID();
    const id = await this.#quiesced([lvol], async () => {
      try {
        return await this.blobstore.createSnapshot(lvol.blob, { xattrs: { [XATTR_NAME]: snapshotName, [XATTR_UUID]: uuid } });
      } catch (e) {
        throw lvolErrorOf(e, `cannot snapshot '${lvol.alias}'`);
      }
    });
    return this.#register(new LvolBdev(this, this.blobstore.openBlob(id), snapshotName, uuid));
  }

  async clone(snapshot: LvolBdev, cloneName: string): Promise<LvolBdev> {
    this.#checkOpen();
    this.#checkNameFree(cloneName);
    if (!snapshot.isSnapshot) throw new LvolError('LVOL_NOT_READ_ONLY', `lvol '${snapshot.alias}' is not a snapshot (read-only): cannot clone it`);
    const uuid = randomUUID();
    let id: number;
    try {
      id = await this.blobstore.createClone(snapshot.blob, { xattrs: { [XATTR_NAME]: cloneName, [XATTR_UUID]: uuid } });
    } catch (e) {
      throw lvolErrorOf(e, `cannot clone '${snapshot.alias}'`);
    }
    return this.#register(new LvolBdev(this, this.blobstore.openBlob(id), cloneName, uuid));
  }

  async rename(lvol: LvolBdev, newName: string): Promise<void> {
    this.#checkOpen();
    if (newName === lvol.lvolName) return;
    this.#checkNameFree(newName);
    const oldAlias = lvol.alias;
    this.#bdevs.checkAliasFree(`${this.#name}/${newName}`);
    await this.blobstore.setXattr(lvol.blob, XATTR_NAME, newName).catch((e: unknown) => {
      throw lvolErrorOf(e, `cannot rename '${oldAlias}'`);
    });
    this.#bdevs.replaceAlias(lvol, oldAlias, `${this.#name}/${newName}`);
    lvol.setNames(this.#name, newName);
  }

  async renameStore(newName: string): Promise<void> {
    this.#checkOpen();
    checkLvolName('new_name', newName);
    if (newName === this.#name) return;
    for (const l of this.#lvols.values()) this.#bdevs.checkAliasFree(`${newName}/${l.lvolName}`);
    await this.blobstore.setXattr(this.#superBlob, XATTR_NAME, newName).catch((e: unknown) => {
      throw lvolErrorOf(e, `cannot rename lvol store '${this.#name}'`);
    });
    this.#name = newName;
    for (const l of this.#lvols.values()) {
      this.#bdevs.replaceAlias(l, l.alias, `${newName}/${l.lvolName}`);
      l.setNames(newName, l.lvolName);
    }
  }

  async resize(lvol: LvolBdev, sizeBytes: number): Promise<void> {
    this.#checkOpen();
    if (lvol.isSnapshot) throw new LvolError('LVOL_READ_ONLY', `lvol '${lvol.alias}' is read-only: cannot resize`);
    const n = this.#clustersFor(sizeBytes);
    const grow = n - lvol.blob.numClusters;
    if (!lvol.blob.isThin && grow > this.freeClusters) {
      throw new LvolError('LVOL_NO_SPACE', `resizing '${lvol.alias}' needs ${grow} more clusters, ${this.freeClusters} free`);
    }
    await this.#quiesced([lvol], async () => {
      try {
        await this.blobstore.resizeBlob(lvol.blob, n);
      } catch (e) {
        throw lvolErrorOf(e, `cannot resize '${lvol.alias}'`);
      }
    });
    this.#bdevs.notifyResized(lvol);
  }

  async setReadOnly(lvol: LvolBdev): Promise<void> {
    this.#checkOpen();
    if (lvol.isSnapshot) return;
    await this.#quiesced([lvol], async () => {
      await this.blobstore.setReadOnly(lvol.blob).catch((e: unknown) => {
        throw lvolErrorOf(e, `cannot set '${lvol.alias}' read-only`);
      });
    });
  }

  /** Copies clusters in small steps so guest I/O keeps running, then detaches under a short quiesce. */
  async #copyUp(lvol: LvolBdev, indices: number[], finish: () => Promise<void>, progress?: ProgressFn): Promise<void> {
    const total = indices.length;
    progress?.(0, total);
    for (let i = 0; i < total; i += COPY_STEP_CLUSTERS) {
      this.#checkOpen();
      await this.blobstore.allocateClusters(lvol.blob, indices.slice(i, i + COPY_STEP_CLUSTERS)).catch((e: unknown) => {
        throw lvolErrorOf(e, `copying clusters into '${lvol.alias}'`);
      });
      progress?.(Math.min(i + COPY_STEP_CLUSTERS, total), total);
    }
    await this.#quiesced([lvol], finish);
  }

  async inflate(lvol: LvolBdev, progress?: ProgressFn): Promise<void> {
    this.#checkOpen();
    if (lvol.isSnapshot) throw new LvolError('LVOL_READ_ONLY', `lvol '${lvol.alias}' is read-only: cannot inflate`);
    const need: number[] = [];
    for (let i = 0; i < lvol.blob.numClusters; i++) if (!lvol.blob.isClusterAllocated(i)) need.push(i);
    await this.#copyUp(lvol, need, async () => {
      await this.blobstore.inflateBlob(lvol.blob).catch((e: unknown) => {
        throw lvolErrorOf(e, `cannot inflate '${lvol.alias}'`);
      });
    }, progress);
  }

  async decoupleParent(lvol: LvolBdev, progress?: ProgressFn): Promise<void> {
    this.#checkOpen();
    if (lvol.isSnapshot) throw new LvolError('LVOL_READ_ONLY', `lvol '${lvol.alias}' is read-only: cannot decouple`);
    const parent = lvol.blob.parentId !== 0 ? this.lvolOfBlob(lvol.blob.parentId) : undefined;
    if (!parent) throw new LvolError('LVOL_NO_PARENT', `lvol '${lvol.alias}' is not a clone: nothing to decouple`);
    const need: number[] = [];
    const n = Math.min(lvol.blob.numClusters, parent.blob.numClusters);
    for (let i = 0; i < n; i++) if (!lvol.blob.isClusterAllocated(i) && parent.blob.isClusterAllocated(i)) need.push(i);
    await this.#copyUp(lvol, need, async () => {
      await this.blobstore.decoupleParent(lvol.blob).catch((e: unknown) => {
        throw lvolErrorOf(e, `cannot decouple '${lvol.alias}'`);
      });
    }, progress);
  }

  /**
   * Deletes an lvol not claimed by a controller. A snapshot with one clone is merged into the
   * clone (every lvol of the store is quiesced meanwhile: the clone's chain changes); with more
   * clones it is refused.
   */
  async deleteLvol(lvol: LvolBdev, progress?: ProgressFn): Promise<void> {
    this.#checkOpen();
    if (lvol.claimedBy !== null) throw new LvolError('LVOL_IN_USE', `lvol '${lvol.alias}' is in use by '${lvol.claimedBy}'`);
    const clones = lvol.blob.cloneIds();
    if (clones.length > 1) {
      const names = clones.map((id) => this.lvolOfBlob(id)?.alias ?? `blob 0x${id.toString(16)}`);
      throw new LvolError('LVOL_HAS_CLONES', `snapshot '${lvol.alias}' has ${clones.length} clones (${names.join(', ')}): delete or inflate them first`);
    }
    const id = lvol.blob.id;
    // clear_method write_zeroes: the data is zeroed before the clusters are freed (a snapshot
    // merged into its clone hands them over instead).
    if (clones.length === 0 && lvol.blob.getXattrString(XATTR_CLEAR_METHOD) === 'write_zeroes') {
      await zeroClusters(this.#device, this.clusterSize, lvol.blob.record.ownedClusters(), progress);
    }
    const affected = clones.length === 1 ? this.lvols().filter((l) => l !== lvol) : [];
    this.#bdevs.unregister(lvol.name);
    try {
      await this.#quiesced(affected, () => this.blobstore.deleteBlob(id));
    } catch (e) {
      // Still there: bring it back as it was.
      this.#register(new LvolBdev(this, this.blobstore.openBlob(id), lvol.lvolName, lvol.uuid));
      throw lvolErrorOf(e, `cannot delete '${lvol.alias}'`);
    }
  }

  #checkNoneClaimed(what: string): void {
    const used = [...this.#lvols.values()].filter((l) => l.claimedBy !== null);
    if (used.length > 0) {
      throw new LvolError('LVOL_IN_USE', `cannot ${what} lvol store '${this.#name}': ${used.map((l) => `'${l.alias}' is used by '${l.claimedBy}'`).join(', ')}`);
    }
  }

  /** Closes every lvol and unloads the blobstore cleanly (daemon shutdown); the data stays. */
  async unload(): Promise<void> {
    if (this.#closed) return;
    await this.#close('unload', false);
  }

  /** Deletes every lvol and the store itself (bdev_lvol_delete_lvstore): its super block is wiped. */
  async destroy(): Promise<void> {
    this.#checkOpen();
    await this.#close('delete', true);
  }

  /** Unregisters every lvol, unloads the blobstore (then wipes its super block if asked) and releases the base bdev. */
  async #close(what: string, wipe: boolean): Promise<void> {
    this.#checkNoneClaimed(what);
    for (const l of this.lvols()) this.#bdevs.unregister(l.name);
    this.#superBlob.close();
    this.#closed = true;
    try {
      await this.blobstore.unload();
      if (wipe) {
        await this.#device.writeZeroes(0, BS_PAGE_SIZE);
        await this.#device.flush();
      }
    } finally {
      this.#device.close();
      this.#bdevs.release(this.baseBdev.name, 'lvol');
    }
  }

  /** bdev_lvol_grow_lvstore: takes in the space the base bdev gained; returns clusters added. */
  async grow(): Promise<number> {
    this.#checkOpen();
    this.#device.resize(this.baseBdev.numBlocks);
    try {
      return await this.blobstore.grow();
    } catch (e) {
      if (e instanceof BlobError && e.code === 'CANNOT_GROW') throw new LvolError('LVOL_NOT_SUPPORTED', `lvol store '${this.#name}': ${e.message}`);
      throw lvolErrorOf(e, `cannot grow lvol store '${this.#name}'`);
    }
  }

  logAllocFailure(lvol: LvolBdev, clusters: number, e: unknown): void {
    log.error({ lvol: lvol.alias, clusters, err: e }, 'first-write cluster allocation failed: the write fails');
  }
}
