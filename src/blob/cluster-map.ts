// A blob's cluster map in a SharedArrayBuffer, and the pure translation a data-path thread uses
// on it: (blob, byte offset) -> device byte offset, "parent", or "zeroes". Word 0 is the blob's
// size in clusters; word 1 + i is the device cluster of blob cluster i (0 = unallocated: cluster 0
// holds the super block, so it is never a data cluster). The metadata thread is the only writer;
// it publishes each entry with one Atomics.store after the cluster's data and metadata are on
// disk, so a reader sees either "unallocated" or a fully written cluster.
// Translation allocates nothing: it is meant for the per-request path. It reads the words
// without Atomics (V8 calls a builtin for each Atomics.load, ~10 ns): an aligned Uint32 element
// read never tears, and the data read after it goes to an address computed from the value read,
// an address dependency that orders it after the entry's load on every CPU V8 runs on.
import { BlobError } from './blob-error.ts';

export const CLUSTER_MAP_HEADER_WORDS = 1;
export const CLUSTER_UNALLOCATED = 0;
/** Nothing in the blob or its ancestors: the range reads as zeroes. */
export const TRANSLATE_ZEROES = -1;
/** Unallocated in this blob but it has a parent: read from the parent, or allocate to write. */
export const TRANSLATE_PARENT = -2;
/** Offset at or beyond the blob's size (or negative). */
export const TRANSLATE_OUT_OF_RANGE = -3;

/** What a reactor needs to rebuild a map chain; survives structuredClone (postMessage). */
export interface ClusterMapSpec {
  buffer: SharedArrayBuffer;
  clusterSize: number;
  parent: ClusterMapSpec | null;
}

export class ClusterMap {
  /** Replaced (never resized in place) when capacity grows: re-send the spec after a resize. */
  words: Uint32Array;
  readonly clusterSize: number;
  /** The parent blob's map (a snapshot), or null. */
  parent: ClusterMap | null;

  constructor(clusterSize: number, numClusters: number, parent: ClusterMap | null = null, buffer?: SharedArrayBuffer) {
    this.clusterSize = clusterSize;
    this.parent = parent;
    this.words = new Uint32Array(buffer ?? new SharedArrayBuffer(4 * (CLUSTER_MAP_HEADER_WORDS + numClusters)));
    if (!buffer) Atomics.store(this.words, 0, numClusters);
  }

  static fromSpec(spec: ClusterMapSpec): ClusterMap {
    const parent = spec.parent ? ClusterMap.fromSpec(spec.parent) : null;
    const m = new ClusterMap(spec.clusterSize, 0, parent, spec.buffer);
    if (m.capacity < m.numClusters) throw new BlobError('INVALID_ARGUMENT', 'cluster map buffer smaller than its size word');
    return m;
  }

  spec(): ClusterMapSpec {
    return { buffer: this.words.buffer as SharedArrayBuffer, clusterSize: this.clusterSize, parent: this.parent ? this.parent.spec() : null };
  }

  get numClusters(): number {
    return Atomics.load(this.words, 0);
  }

  get capacity(): number {
    return this.words.length - CLUSTER_MAP_HEADER_WORDS;
  }

  entry(i: number): number {
    return Atomics.load(this.words, CLUSTER_MAP_HEADER_WORDS + i);
  }

  setEntry(i: number, cluster: number): void {
    Atomics.store(this.words, CLUSTER_MAP_HEADER_WORDS + i, cluster);
  }

  /** Copy of the entries [0, numClusters). */
  entries(): Uint32Array {
    return this.words.slice(CLUSTER_MAP_HEADER_WORDS, CLUSTER_MAP_HEADER_WORDS + this.numClusters);
  }

  /** Sets size and entries at once (load, rollback). */
  assign(entries: Uint32Array): void {
    this.resize(entries.length);
    for (let i = 0; i < entries.length; i++) this.setEntry(i, entries[i]);
  }

  /**
   * Changes the size. Shrinking lowers the size word first, then clears the dropped entries;
   * growing past capacity moves to a new, larger buffer (the old one stays valid for readers
   * until they switch).
   */
  resize(numClusters: number): void {
    const old = this.numClusters;
    if (numClusters <= old) {
      Atomics.store(this.words, 0, numClusters);
      for (let i = numClusters; i < old; i++) this.setEntry(i, CLUSTER_UNALLOCATED);
      return;
    }
    if (numClusters > this.capacity) {
      const words = new Uint32Array(new SharedArrayBuffer(4 * (CLUSTER_MAP_HEADER_WORDS + numClusters)));
      words.set(this.words.subarray(0, CLUSTER_MAP_HEADER_WORDS + old));
      this.words = words;
    }
    for (let i = old; i < numClusters; i++) this.setEntry(i, CLUSTER_UNALLOCATED);
    Atomics.store(this.words, 0, numClusters);
  }
}

/** Bytes from offsetBytes to the end of its cluster: the largest piece one translation covers. */
export function bytesToClusterEnd(map: ClusterMap, offsetBytes: number): number {
  return map.clusterSize - (offsetBytes % map.clusterSize);
}

/**
 * This blob only: device byte offset, TRANSLATE_PARENT, TRANSLATE_ZEROES (unallocated, no
 * parent) or TRANSLATE_OUT_OF_RANGE. A writer treats PARENT and ZEROES alike: the cluster must be
 * allocated (by the metadata thread) before the write.
 */
export function translateOwn(map: ClusterMap, offsetBytes: number): number {
  const cs = map.clusterSize;
  const idx = Math.floor(offsetBytes / cs);
  const w = map.words;
  if (!(offsetBytes >= 0) || idx >= w[0]) return TRANSLATE_OUT_OF_RANGE;
  const c = w[CLUSTER_MAP_HEADER_WORDS + idx];
  if (c !== CLUSTER_UNALLOCATED) return c * cs + (offsetBytes - idx * cs);
  return map.parent ? TRANSLATE_PARENT : TRANSLATE_ZEROES;
}

/**
 * Where a read of offsetBytes is served from, following the parent chain: a device byte offset,
 * TRANSLATE_ZEROES, or TRANSLATE_OUT_OF_RANGE (beyond this blob). Beyond an ancestor's size the
 * data is zeroes (a clone may be larger than its snapshot).
 */
export function translateRead(map: ClusterMap, offsetBytes: number): number {
  const cs = map.clusterSize;
  const idx = Math.floor(offsetBytes / cs);
  if (!(offsetBytes >= 0) || idx >= map.words[0]) return TRANSLATE_OUT_OF_RANGE;
  let m: ClusterMap | null = map;
  while (m !== null) {
    const w = m.words;
    if (idx >= w[0]) return TRANSLATE_ZEROES;
    const c = w[CLUSTER_MAP_HEADER_WORDS + idx];
    if (c !== CLUSTER_UNALLOCATED) return c * cs + (offsetBytes - idx * cs);
    m = m.parent;
  }
  return TRANSLATE_ZEROES;
}
