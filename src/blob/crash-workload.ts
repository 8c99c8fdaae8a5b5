// The crash harness's workload: scripted blob operations, a reference model of what each leaves
// behind (written independently of the blobstore: logical bytes, parent names, flags), a driver
// that runs a step on a real blobstore, and a seeded generator of valid random workloads.
import { BlobError } from './blob-error.ts';
import type { Blob } from './blob.ts';
import type { Blobstore } from './blobstore.ts';

export type CrashStep =
  | { op: 'create'; name: string; numClusters: number; thin: boolean }
  | { op: 'write'; name: string; offset: number; len: number; seed: number }
  | { op: 'snapshot'; name: string; snap: string }
  | { op: 'clone'; snap: string; name: string }
  | { op: 'resize'; name: string; numClusters: number }
  | { op: 'delete'; name: string }
  | { op: 'setXattr'; name: string; key: string; value: string }
  | { op: 'setReadOnly'; name: string }
  | { op: 'inflate'; name: string }
  | { op: 'decouple'; name: string }
  | { op: 'unload' };

export interface ModelBlob {
  data: Uint8Array;
  readOnly: boolean;
  parent: string | null;
  xattrs: Map<string, string>;
}

/** Deterministic, position-dependent bytes: a misplaced block never matches by accident. */
export function patternBytes(len: number, seed: number, offset: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) {
    const x = offset + i;
    out[i] = (seed * 131 + (x >>> 9) * 29 + x * 7 + 1) & 0xff;
  }
  return out;
}

export class CrashModel {
  readonly blobs = new Map<string, ModelBlob>();
  readonly clusterSize: number;

  constructor(clusterSize: number) {
    this.clusterSize = clusterSize;
  }

  clone(): CrashModel {
    const m = new CrashModel(this.clusterSize);
    for (const [k, b] of this.blobs) m.blobs.set(k, { data: b.data.slice(), readOnly: b.readOnly, parent: b.parent, xattrs: new Map(b.xattrs) });
    return m;
  }

  get(name: string): ModelBlob {
    const b = this.blobs.get(name);
    if (!b) throw new BlobError('BLOB_NOT_FOUND', `workload names unknown blob "${name}"`);
    return b;
  }

  clonesOf(name: string): string[] {
    return [...this.blobs].filter(([, b]) => b.parent === name).map(([n]) => n);
  }

  apply(step: CrashStep): void {
    const cs = this.clusterSize;
    switch (step.op) {
      case 'create':
        this.blobs.set(step.name, { data: new Uint8Array(step.numClusters * cs), readOnly: false, parent: null, xattrs: new Map() });
        break;
      case 'write':
        this.get(step.name).data.set(patternBytes(step.len, step.seed, step.offset), step.offset);
        break;
      case 'snapshot': {
        const b = this.get(step.name);
        this.blobs.set(step.snap, { data: b.data.slice(), readOnly: true, parent: b.parent, xattrs: new Map() });
        b.parent = step.snap;
        break;
      }
      case 'clone': {
        const s = this.get(step.snap);
        this.blobs.set(step.name, { data: s.data.slice(), readOnly: false, parent: step.snap, xattrs: new Map() });
        break;
      }
      case 'resize': {
        const b = this.get(step.name);
        const data = new Uint8Array(step.numClusters * cs);
        data.set(b.data.subarray(0, Math.min(b.data.length, data.length)));
        // Grown clusters read through the parent (a thin clone regrown over its snapshot's data).
        if (b.parent && data.length > b.data.length) {
          const p = this.get(b.parent).data;
          if (p.length > b.data.length) data.set(p.subarray(b.data.length, Math.min(p.length, data.length)), b.data.length);
        }
        b.data = data;
        break;
      }
      case 'delete': {
        const b = this.get(step.name);
        for (const c of this.clonesOf(step.name)) this.get(c).parent = b.parent;
        this.blobs.delete(step.name);
        break;
      }
      case 'setXattr':
        this.get(step.name).xattrs.set(step.key, step.value);
        break;
      case 'setReadOnly':
        this.get(step.name).readOnly = true;
        break;
      case 'inflate':
        this.get(step.name).parent = null;
        break;
      case 'decouple': {
        const b = this.get(step.name);
        b.parent = this.get(b.parent!).parent;
        break;
      }
      case 'unload':
        break;
    }
  }
}

/** Runs one step on the blobstore; `ids` maps workload names to blob ids (filled by creates). */
export async function runStep(bs: Blobstore, ids: Map<string, number>, step: CrashStep): Promise<void> {
  const withBlob = async (name: string, fn: (b: Blob) => Promise<void>) => {
    const b = bs.openBlob(ids.get(name)!);
    try {
      await fn(b);
    } finally {
      b.close();
    }
  };
  switch (step.op) {
    case 'create':
      ids.set(step.name, await bs.createBlob({ numClusters: step.numClusters, thin: step.thin }));
      return;
    case 'write':
      return withBlob(step.name, (b) => bs.writeBlob(b, step.offset, patternBytes(step.len, step.seed, step.offset)));
    case 'snapshot':
      return withBlob(step.name, async (b) => void ids.set(step.snap, await bs.createSnapshot(b)));
    case 'clone':
      return withBlob(step.snap, async (b) => void ids.set(step.name, await bs.createClone(b)));
    case 'resize':
      return withBlob(step.name, (b) => bs.resizeBlob(b, step.numClusters));
    case 'delete':
      return bs.deleteBlob(ids.get(step.name)!);
    case 'setXattr':
      return withBlob(step.name, (b) => bs.setXattr(b, step.key, step.value));
    case 'setReadOnly':
      return withBlob(step.name, (b) => bs.setReadOnly(b));
    case 'inflate':
      return withBlob(step.name, (b) => bs.inflateBlob(b));
    case 'decouple':
      return withBlob(step.name, (b) => bs.decoupleParent(b));
    case 'unload':
      return bs.unload();
  }
}

/** Small deterministic PRNG (mulberry32): the same seed gives the same workload everywhere. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface RandomWorkloadOptions {
  seed: number;
  steps: number;
  clusterSize: number;
  ioUnit: number;
  /** Largest blob, in clusters. */
  maxClusters?: number;
  /** Most blobs alive at once (bounds space use). */
  maxBlobs?: number;
}

/** A valid random workload ending in an unload; every step is legal in the model's state. */
export function randomWorkload(o: RandomWorkloadOptions): CrashStep[] {
  const rnd = prng(o.seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)];
  const maxClusters = o.maxClusters ?? 6;
  const maxBlobs = o.maxBlobs ?? 10;
  const model = new CrashModel(o.clusterSize);
  const steps: CrashStep[] = [];
  let n = 0;
  while (steps.length < o.steps) {
    const names = [...model.blobs.keys()];
    const writable = names.filter((x) => !model.get(x).readOnly);
    const readOnly = names.filter((x) => model.get(x).readOnly);
    const withParent = writable.filter((x) => model.get(x).parent !== null);
    const deletable = names.filter((x) => model.clonesOf(x).length <= 1);
    const room = names.length < maxBlobs;
    const r = rnd();
    let step: CrashStep | null = null;
    if (names.length === 0 || (r < 0.12 && room)) {
      step = { op: 'create', name: `b${n++}`, numClusters: 1 + Math.floor(rnd() * maxClusters), thin: rnd() < 0.75 };
    } else if (r < 0.45 && writable.length) {
      const name = pick(writable);
      const size = model.get(name).data.length;
      if (size > 0) {
        const units = size / o.ioUnit;
        const first = Math.floor(rnd() * units);
        const count = 1 + Math.floor(rnd() * Math.min(units - first, (2 * o.clusterSize) / o.ioUnit));
        step = { op: 'write', name, offset: first * o.ioUnit, len: count * o.ioUnit, seed: 1 + Math.floor(rnd() * 250) };
      }
    } else if (r < 0.55 && writable.length && room) {
      step = { op: 'snapshot', name: pick(writable), snap: `s${n++}` };
    } else if (r < 0.63 && readOnly.length && room) {
      step = { op: 'clone', snap: pick(readOnly), name: `c${n++}` };
    } else if (r < 0.72 && writable.length) {
      step = { op: 'resize', name: pick(writable), numClusters: Math.floor(rnd() * (maxClusters + 1)) };
    } else if (r < 0.79 && deletable.length) {
      step = { op: 'delete', name: pick(deletable) };
    } else if (r < 0.9 && names.length) {
      // Large values push metadata onto chained pages.
      const value = rnd() < 0.6 ? 'x'.repeat(2100 + Math.floor(rnd() * 1900)) : `v${Math.floor(rnd() * 1000)}`;
      step = { op: 'setXattr', name: pick(names), key: pick(['name', 'uuid', 'k']), value };
    } else if (r < 0.92 && writable.length) {
      step = { op: 'setReadOnly', name: pick(writable) };
    } else if (r < 0.96 && withParent.length) {
      step = { op: 'inflate', name: pick(withParent) };
    } else if (withParent.length) {
      step = { op: 'decouple', name: pick(withParent) };
    }
    if (!step) continue;
    model.apply(step);
    steps.push(step);
  }
  steps.push({ op: 'unload' });
  return steps;
}
