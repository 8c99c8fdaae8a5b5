// A handle on an open blob. Reading its properties is synchronous (the blobstore keeps every
// blob's metadata in memory); operations go through the Blobstore, which checks the handle.
import { BlobError } from './blob-error.ts';
import type { BlobRecord } from './blob-record.ts';

export class Blob {
  readonly id: number;
  /** The blobstore's state for this blob; for the blobstore's own use. */
  readonly record: BlobRecord;
  #open = true;

  constructor(record: BlobRecord) {
    this.id = record.id;
    this.record = record;
    record.openCount++;
  }

  get isOpen(): boolean {
    return this.#open && !this.record.deleted;
  }

  get numClusters(): number {
    return this.record.numClusters;
  }

  get sizeBytes(): number {
    return this.record.numClusters * this.record.map.clusterSize;
  }

  get isThin(): boolean {
    return this.record.thin;
  }

  get isReadOnly(): boolean {
    return this.record.readOnly;
  }

  /** Id of the snapshot this blob is a clone of, or 0. */
  get parentId(): number {
    return this.record.parentId;
  }

  /** Ids of the blobs that are clones of this one, ascending. */
  cloneIds(): number[] {
    return [...this.record.clones].sort((a, b) => a - b);
  }

  xattrNames(): string[] {
    return [...this.record.xattrs.keys()];
  }

  /** A copy of the xattr's value, or undefined. */
  getXattr(name: string): Uint8Array | undefined {
    return this.record.xattrs.get(name)?.slice();
  }

  getXattrString(name: string): string | undefined {
    const v = this.record.xattrs.get(name);
    return v && new TextDecoder().decode(v);
  }

  isClusterAllocated(index: number): boolean {
    if (!Number.isInteger(index) || index < 0 || index >= this.record.numClusters) {
      throw new BlobError('OUT_OF_RANGE', `cluster ${index} outside blob 0x${this.id.toString(16)} of ${this.record.numClusters}`);
    }
    return this.record.map.entry(index) !== 0;
  }

  /** Clusters this blob owns (not counting what it reads through its parent). */
  get allocatedClusters(): number {
    return this.record.ownedClusters().length;
  }

  close(): void {
    if (!this.#open) return;
    this.#open = false;
    this.record.openCount--;
  }
}
