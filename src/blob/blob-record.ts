// The in-memory state of one blob, owned by the blobstore (handles point at it). Mirrors what
// its metadata pages hold, plus what is derived at load: the clone set (back-pointers from a
// snapshot to the blobs whose parent it is; never stored, so it cannot go stale on a crash).
import { BLOB_ID_NONE } from './blobstore-layout.ts';
import { ClusterMap } from './cluster-map.ts';
import { PENDING_NONE, type BlobMd } from './blob-md-codec.ts';
import { IoGate } from './io-gate.ts';

export class BlobRecord {
  readonly id: number;
  /** Metadata page holding the root page (fixed for the blob's life: the id names it). */
  readonly rootPage: number;
  /** Metadata pages after the root, in chain order. */
  chainPages: number[] = [];
  readonly map: ClusterMap;
  thin = false;
  readOnly = false;
  parentId = BLOB_ID_NONE;
  pendingKind = PENDING_NONE;
  pendingOther = BLOB_ID_NONE;
  readonly xattrs = new Map<string, Uint8Array>();
  /** Ids of blobs whose parent this is. */
  readonly clones = new Set<number>();
  openCount = 0;
  deleted = false;
  readonly gate = new IoGate();

  constructor(id: number, rootPage: number, clusterSize: number, numClusters: number) {
    this.id = id;
    this.rootPage = rootPage;
    this.map = new ClusterMap(clusterSize, numClusters);
  }

  get numClusters(): number {
    return this.map.numClusters;
  }

  toMd(): BlobMd {
    return {
      thin: this.thin, readOnly: this.readOnly, parentId: this.parentId,
      pendingKind: this.pendingKind, pendingOther: this.pendingOther,
      xattrs: this.xattrs, clusters: this.map.entries(),
    };
  }

  applyMd(md: BlobMd): void {
    this.thin = md.thin;
    this.readOnly = md.readOnly;
    this.parentId = md.parentId;
    this.pendingKind = md.pendingKind;
    this.pendingOther = md.pendingOther;
    this.xattrs.clear();
    for (const [k, v] of md.xattrs) this.xattrs.set(k, v);
    this.map.assign(md.clusters);
  }

  /** Allocated (own) clusters, in blob order. */
  ownedClusters(): number[] {
    const out: number[] = [];
    const n = this.map.numClusters;
    for (let i = 0; i < n; i++) {
      const c = this.map.entry(i);
      if (c !== 0) out.push(c);
    }
    return out;
  }
}
