// One logical volume, registered as a bdev (name = its UUID, alias = "lvs_name/lvol_name", as
// SPDK). Holds the blob open for its whole life, owns the control words its reactor channels
// share (lvol-shared.ts) and serves their first-write allocation requests, batched into one
// metadata write per event-loop turn.
import { BroadcastChannel } from 'node:worker_threads';
import type { Bdev, BdevIoTypes } from '../bdev/bdev.ts';
import { BDEV_EIO, BDEV_ENOSPC } from '../bdev/bdev.ts';
import {
  CTL_FROZEN, CTL_GENERATION, CTL_INFLIGHT, CTL_WORDS, LVOL_MODULE, lvolBroadcastName,
  type LvolAllocFailure, type LvolChannelSpec, type LvolMapUpdate, type LvolMessage,
} from '../bdev/modules/lvol-shared.ts';
import type { Blob } from '../blob/blob.ts';
import type { Blobstore } from '../blob/blobstore.ts';
import { BlobError } from '../blob/blob-error.ts';
import { LvolError } from './lvol-error.ts';
import type { LvolStore } from './lvol-store.ts';

export const LVOL_PRODUCT_NAME = 'Logical Volume';
/** How long a snapshot, resize or delete waits for the lvol's I/O in flight to finish. */
export const QUIESCE_TIMEOUT_MS = 30_000;

export class LvolBdev implements Bdev {
  readonly name: string;
  readonly aliases: string[];
  readonly uuid: string;
  readonly productName = LVOL_PRODUCT_NAME;
  readonly moduleName = LVOL_MODULE;
  readonly blockSize: number;
  readonly ioTypes: BdevIoTypes;
  readonly writeCache: boolean;
  // Unmap of a range a clone reads from its snapshot deallocates nothing: it does not read zeroes.
  readonly unmapReadsZero = false;
  readonly optimalIoBoundary: number;
  claimedBy: string | null = null;
  readonly store: LvolStore;
  readonly blob: Blob;
  #lvolName: string;
  readonly #ctl = new Int32Array(new SharedArrayBuffer(CTL_WORDS * 4));
  readonly #bc: BroadcastChannel;
  #freezes = 0;
  readonly #allocPending = new Set<number>();
  #allocRunning = false;
  #destroyed = false;

  constructor(store: LvolStore, blob: Blob, lvolName: string, uuid: string) {
    this.store = store;
    this.blob = blob;
    this.#lvolName = lvolName;
    this.uuid = uuid;
    this.name = uuid;
    this.aliases = [`${store.name}/${lvolName}`];
    this.blockSize = store.blockSize;
    const base = store.baseBdev;
    this.writeCache = base.writeCache;
    this.ioTypes = { read: true, write: true, flush: base.ioTypes.flush, unmap: true, write_zeroes: true, reset: true };
    this.optimalIoBoundary = store.clusterSize / store.blockSize;
    this.#bc = new BroadcastChannel(lvolBroadcastName(uuid));
    this.#bc.onmessage = (ev: unknown): void => this.#onMessage((ev as { data: LvolMessage }).data);
    this.#bc.unref();
  }

  get lvolName(): string {
    return this.#lvolName;
  }

  get numBlocks(): number {
    return this.blob.sizeBytes / this.blockSize;
  }

  get alias(): string {
    return this.aliases[0];
  }

  /** Renames in memory (the store persists the xattr and fixes the registry's alias). */
  setNames(storeName: string, lvolName: string): void {
    this.#lvolName = lvolName;
    this.aliases[0] = `${storeName}/${lvolName}`;
  }

  get #blobstore(): Blobstore {
    return this.store.blobstore;
  }

  channelSpec(): LvolChannelSpec {
    if (this.#destroyed) throw new LvolError('LVOL_NOT_FOUND', `lvol '${this.alias}' was deleted`);
    return {
      module: LVOL_MODULE,
      name: this.name,
      blockSize: this.blockSize,
      numBlocks: this.numBlocks,
      uuid: this.uuid,
      base: this.store.baseBdev.channelSpec(),
      map: this.#blobstore.clusterMapSpec(this.blob),
      generation: Atomics.load(this.#ctl, CTL_GENERATION),
      control: this.#ctl.buffer as SharedArrayBuffer,
      readOnly: this.blob.isReadOnly,
    };
  }

  driverSpecific(): Record<string, unknown> {
    const lvol: Record<string, unknown> = {
      lvol_store_uuid: this.store.uuid,
      base_bdev: this.store.baseBdev.name,
      thin_provision: this.blob.isThin,
      num_allocated_clusters: this.blob.allocatedClusters,
      snapshot: this.isSnapshot,
      clone: this.blob.parentId !== 0,
    };
    const parent = this.blob.parentId !== 0 ? this.store.lvolOfBlob(this.blob.parentId) : undefined;
    if (parent) lvol.base_snapshot = parent.lvolName;
    if (this.isSnapshot) {
      lvol.clones = this.blob.cloneIds().map((id) => this.store.lvolOfBlob(id)?.lvolName).filter((n) => n !== undefined);
    }
    lvol.esnap_clone = false;
    return { lvol };
  }

  /** A snapshot is a read-only lvol (what bdev_lvol_snapshot makes, or set read-only). */
  get isSnapshot(): boolean {
    return this.blob.isReadOnly;
  }

  /** Stops new I/O on every reactor channel and waits for the I/O in flight. Nests. */
  async quiesce(timeoutMs = QUIESCE_TIMEOUT_MS): Promise<void> {
    if (this.#freezes++ === 0) Atomics.store(this.#ctl, CTL_FROZEN, 1);
    const deadline = Date.now() + timeoutMs;
    while (Atomics.load(this.#ctl, CTL_INFLIGHT) !== 0) {
      if (Date.now() > deadline) {
        this.resume();
        throw new LvolError('LVOL_BUSY', `lvol '${this.alias}': I/O in flight did not finish within ${timeoutMs} ms`);
      }
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  /** Sends the current map chain to every channel; call while quiesced, after the map changed. */
  publish(): void {
    const generation = Atomics.add(this.#ctl, CTL_GENERATION, 1) + 1;
    // Generation first: a channel that sees the new number keeps its I/O parked until this arrives.
    const msg: LvolMapUpdate = { kind: 'map', generation, map: this.#blobstore.clusterMapSpec(this.blob), numBlocks: this.numBlocks, readOnly: this.blob.isReadOnly };
    this.#bc.postMessage(msg);
  }

  resume(): void {
    if (this.#freezes === 0) return;
    if (--this.#freezes === 0) Atomics.store(this.#ctl, CTL_FROZEN, 0);
  }

  #onMessage(msg: LvolMessage): void {
    if (msg.kind !== 'alloc' || this.#destroyed || !Array.isArray(msg.clusters)) return;
    for (const c of msg.clusters) if (Number.isInteger(c)) this.#allocPending.add(c);
    if (!this.#allocRunning) void this.#allocate();
  }

  async #allocate(): Promise<void> {
    this.#allocRunning = true;
    try {
      while (this.#allocPending.size > 0 && !this.#destroyed) {
        const want = [...this.#allocPending];
        this.#allocPending.clear();
        const n = this.blob.numClusters;
        const bad = want.filter((c) => c < 0 || c >= n);
        const good = want.filter((c) => c >= 0 && c < n);
        if (bad.length > 0) this.#failAlloc(bad, BDEV_EIO);
        if (good.length === 0) continue;
        try {
          await this.#blobstore.allocateClusters(this.blob, good);
        } catch (e) {
          this.#failAlloc(good, e instanceof BlobError && e.code === 'NO_SPACE' ? BDEV_ENOSPC : BDEV_EIO);
          this.store.logAllocFailure(this, good.length, e);
        }
      }
    } finally {
      this.#allocRunning = false;
    }
  }

  #failAlloc(clusters: number[], status: number): void {
    const msg: LvolAllocFailure = { kind: 'alloc-failed', clusters, status };
    this.#bc.postMessage(msg);
  }

  /** Called by the registry once the bdev left it (no channel open): closes the blob handle. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#bc.close();
    this.blob.close();
    this.store.forget(this);
  }
}
