// Crash-consistency harness. A workload is run once to count its device writes; then, for every
// crash point N, it is run again on a device that applies only the first N writes (optionally
// tearing write N+1), the surviving image is loaded, and the result must be:
//   - loadable, with no cluster both free and used, none owned twice, no page or id leaked;
//   - exactly the model after the last step whose writes all landed, or after the next step
//     (the one in flight at the crash) for metadata; block by block one of the two for data;
//   - usable afterwards (create, write, read back, unload, clean load).
// The small test sweep and the lead's larger sweep (runCrashSweep) both end here.
import { BlobError } from './blob-error.ts';
import { Blobstore } from './blobstore.ts';
import { findInvariantViolations } from './blobstore-invariants.ts';
import { FaultyBlobDevice } from './faulty-blob-device.ts';
import { RamBlobDevice } from './ram-blob-device.ts';
import { CrashModel, patternBytes, randomWorkload, runStep, type CrashStep } from './crash-workload.ts';

export interface CrashRunOptions {
  steps: CrashStep[];
  blockSize?: number;
  deviceBytes?: number;
  clusterSize?: number;
  mdPages?: number;
  /** Blocks of the first dropped write that still land (0: dropped whole). */
  tearBlocks?: number;
  /** Test every stride-th crash point (1: all). */
  stride?: number;
  onCrashPoint?: (n: number, total: number) => void;
}

export interface CrashRunReport {
  totalWrites: number;
  crashPointsChecked: number;
  /** Crash points whose load found a clean store / had to finish or undo an operation. */
  cleanLoads: number;
  recoveries: number;
}

export class CrashConsistencyError extends Error {
  readonly code = 'CRASH_INCONSISTENT';
  readonly crashPoint: number;
  constructor(crashPoint: number, message: string) {
    super(`after a crash at write ${crashPoint}: ${message}`);
    this.name = 'CrashConsistencyError';
    this.crashPoint = crashPoint;
  }
}

function stepLabel(s: CrashStep | undefined): string {
  return s ? JSON.stringify(s) : '(none)';
}

/** Checks blob metadata against one model; returns the first difference or null. */
function metadataDiff(bs: Blobstore, ids: Map<string, number>, model: CrashModel): string | null {
  const expected = new Map<number, string>();
  for (const name of model.blobs.keys()) expected.set(ids.get(name)!, name);
  const actual = bs.blobIds();
  if (actual.length !== expected.size || actual.some((id) => !expected.has(id))) {
    return `blobs ${actual.map((i) => '0x' + i.toString(16)).join(',')} vs expected ${[...model.blobs.keys()].join(',')}`;
  }
  for (const [id, name] of expected) {
    const m = model.get(name);
    const b = bs.openBlob(id);
    try {
      if (b.sizeBytes !== m.data.length) return `${name}: size ${b.sizeBytes}, expected ${m.data.length}`;
      if (b.isReadOnly !== m.readOnly) return `${name}: read-only ${b.isReadOnly}, expected ${m.readOnly}`;
      const parent = m.parent === null ? 0 : ids.get(m.parent)!;
      if (b.parentId !== parent) return `${name}: parent 0x${b.parentId.toString(16)}, expected ${m.parent}`;
      const names = b.xattrNames().sort();
      const want = [...m.xattrs.keys()].sort();
      if (names.join('\0') !== want.join('\0')) return `${name}: xattrs ${names.join(',')}, expected ${want.join(',')}`;
      for (const k of want) if (b.getXattrString(k) !== m.xattrs.get(k)) return `${name}: xattr ${k} is ${b.getXattrString(k)}`;
    } finally {
      b.close();
    }
  }
  return null;
}

/** Every block must equal the chosen model's data, or the other model's (a torn in-flight write). */
async function dataDiff(bs: Blobstore, ids: Map<string, number>, model: CrashModel, other: CrashModel | null): Promise<string | null> {
  const unit = bs.ioUnitSize;
  for (const [name, m] of model.blobs) {
    const b = bs.openBlob(ids.get(name)!);
    try {
      const got = new Uint8Array(m.data.length);
      await bs.readBlob(b, 0, got.length, got);
      const alt = other?.blobs.get(name)?.data;
      for (let off = 0; off < got.length; off += unit) {
        const blk = got.subarray(off, off + unit);
        if (equal(blk, m.data.subarray(off, off + unit))) continue;
        if (alt && alt.length >= off + unit && equal(blk, alt.subarray(off, off + unit))) continue;
        return `${name}: data differs at byte ${off}`;
      }
    } finally {
      b.close();
    }
  }
  return null;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The recovered store must still work: allocate, write, read back, unload, load clean. */
async function exerciseAfterRecovery(bs: Blobstore, dev: RamBlobDevice): Promise<string | null> {
  const id = await bs.createBlob({ numClusters: 1 });
  const b = bs.openBlob(id);
  const data = patternBytes(bs.ioUnitSize, 99, 0);
  await bs.writeBlob(b, 0, data);
  b.close();
  await bs.unload();
  const again = await Blobstore.load(dev);
  if (!again.loadedClean) return 'reload after a clean unload was not clean';
  const v = findInvariantViolations(again.inspect());
  if (v.length) return `after clean reload: ${v[0]}`;
  const got = new Uint8Array(data.length);
  const h = again.openBlob(id);
  await again.readBlob(h, 0, got.length, got);
  h.close();
  return equal(got, data) ? null : 'data written after recovery did not survive a clean reload';
}

export async function runCrashWorkload(o: CrashRunOptions): Promise<CrashRunReport> {
  const blockSize = o.blockSize ?? 4096;
  const clusterSize = o.clusterSize ?? 16 * 1024;
  const deviceBytes = o.deviceBytes ?? 4 * 1024 * 1024;
  const stride = Math.max(1, o.stride ?? 1);
  const base = new RamBlobDevice(blockSize, deviceBytes / blockSize);
  await Blobstore.create(base, { clusterSize, mdPages: o.mdPages ?? 64 });
  const image = base.bytes;

  // Counting run: writes issued by the end of each step, and the model after each step.
  const counter = new FaultyBlobDevice(new RamBlobDevice(blockSize, base.numBlocks, image), { writeLimit: Infinity });
  const models = [new CrashModel(clusterSize)];
  const ends: number[] = [];
  const ids = new Map<string, number>();
  let bs = await Blobstore.load(counter);
  for (const step of o.steps) {
    await runStep(bs, ids, step);
    ends.push(counter.writesIssued);
    const m = models[models.length - 1].clone();
    m.apply(step);
    models.push(m);
  }
  const total = counter.writesIssued;
  const report: CrashRunReport = { totalWrites: total, crashPointsChecked: 0, cleanLoads: 0, recoveries: 0 };

  for (let n = 0; n <= total; n += n === total ? 1 : Math.min(stride, total - n)) {
    o.onCrashPoint?.(n, total);
    const disk = new RamBlobDevice(blockSize, base.numBlocks, image);
    const faulty = new FaultyBlobDevice(disk, { writeLimit: n, tearBlocks: o.tearBlocks ?? 0 });
    const runIds = new Map<string, number>();
    bs = await Blobstore.load(faulty);
    for (const step of o.steps) await runStep(bs, runIds, step);
    if (faulty.writesIssued !== total) throw new CrashConsistencyError(n, `rerun issued ${faulty.writesIssued} writes, first run ${total}`);
    const done = ends.filter((e) => e <= n).length;
    const fail = (msg: string) => new CrashConsistencyError(n, `${msg} (last complete step #${done} ${stepLabel(o.steps[done - 1])}, in flight ${stepLabel(o.steps[done])})`);
    let loaded: Blobstore;
    try {
      loaded = await Blobstore.load(disk);
    } catch (e) {
      throw fail(`load failed: ${(e as BlobError).code ?? ''} ${(e as Error).message}`);
    }
    if (loaded.loadedClean) report.cleanLoads++;
    if (loaded.recovered.length) report.recoveries++;
    const violations = findInvariantViolations(loaded.inspect());
    if (violations.length) throw fail(violations.join('; '));
    const before = models[done];
    const after = done < o.steps.length ? models[done + 1] : null;
    const mdBefore = metadataDiff(loaded, runIds, before);
    const mdAfter = after ? metadataDiff(loaded, runIds, after) : 'no further step';
    if (mdBefore !== null && mdAfter !== null) throw fail(`metadata matches neither side: ${mdBefore} / ${mdAfter}`);
    const chosen = mdBefore === null ? before : after!;
    const d = await dataDiff(loaded, runIds, chosen, chosen === before ? after : before);
    if (d) throw fail(d);
    const use = await exerciseAfterRecovery(loaded, disk);
    if (use) throw fail(use);
    report.crashPointsChecked++;
  }
  return report;
}

export interface CrashSweepOptions {
  seed?: number;
  steps?: number;
  tearBlocks?: number;
  stride?: number;
  onCrashPoint?: (n: number, total: number) => void;
}

/** The larger sweep: a seeded random workload, every crash point. For a dedicated npm script. */
export async function runCrashSweep(o: CrashSweepOptions = {}): Promise<CrashRunReport & { seed: number; steps: number }> {
  const seed = o.seed ?? 1;
  const clusterSize = 16 * 1024;
  const steps = randomWorkload({ seed, steps: o.steps ?? 40, clusterSize, ioUnit: 4096 });
  const r = await runCrashWorkload({ steps, clusterSize, tearBlocks: o.tearBlocks ?? 1, stride: o.stride, onCrashPoint: o.onCrashPoint });
  return { ...r, seed, steps: steps.length };
}
