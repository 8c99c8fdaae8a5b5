// The load generator's hot loop: keeps iodepth requests in flight per queue, busy-polls used
// rings, records latencies. Synchronous on purpose: in an async function every local that lives
// across an await is kept boxed, and each double written to it (a timestamp per I/O) allocates.
import { performance } from 'node:perf_hooks';
import type { BenchJob } from './bench-job.ts';
import type { IoSlot, IoTarget } from './io-target.ts';
import { LatencyHistogram } from './latency-histogram.ts';
import { fillPattern } from './data-pattern.ts';

class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  /** Uniform integer in [0, n). */
  below(n: number): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return n <= 4294967296 ? Math.floor((this.s / 4294967296) * n) : Math.floor(Math.random() * n);
  }
}

export class LoadLoop {
  readonly hist = new LatencyHistogram();
  reads = 0;
  writes = 0;
  errors = 0;
  /** Generation last written to each unit (verify): 0 = never written. */
  readonly written: Uint32Array | null;
  private readonly t: IoTarget;
  private readonly bs: number;
  private readonly units: number;
  private readonly random: boolean;
  private readonly mixRead: number;
  private readonly rng: Rng;
  private readonly startAt: Float64Array;
  private readonly isWrite: Uint8Array;
  private generation = 0;
  private seqCursor = 0;
  private inFlight = 0;
  /** I/Os submitted at or after this time (ms) are recorded; +Infinity: none. */
  private recordFrom = Infinity;

  constructor(t: IoTarget, job: BenchJob, units: number) {
    this.t = t;
    this.bs = job.bs;
    this.units = units;
    this.random = job.rw.startsWith('rand');
    this.mixRead = job.rw === 'read' || job.rw === 'randread' ? 100 : job.rw === 'write' || job.rw === 'randwrite' ? 0 : job.rwmixread;
    this.rng = new Rng(job.seed);
    this.startAt = new Float64Array(t.slots.length);
    this.isWrite = new Uint8Array(t.slots.length);
    this.written = job.verify ? new Uint32Array(units) : null;
  }

  /** Submits iodepth requests on every queue. */
  fill(iodepth: number): void {
    for (let q = 0; q < this.t.queues; q++) {
      for (let k = 0; k < iodepth; k++) {
        const s = this.t.acquire(q);
        if (!s) break;
        this.issue(s);
        this.startAt[s.benchIndex] = performance.now();
        this.inFlight++;
      }
      this.t.kick(q);
    }
  }

  /** Records the I/Os submitted from now on (counts, latencies). */
  record(from: number): void {
    this.recordFrom = from;
  }

  /**
   * Reaps and re-issues until performance.now() reaches `until` (ms), or only reaps (drain) when
   * `reissue` is false, until nothing is in flight. Returns the time it stopped.
   */
  run(until: number, reissue: boolean): number {
    const t = this.t;
    const queues = t.queues;
    const startAt = this.startAt;
    const recordFrom = this.recordFrom;
    let now = performance.now();
    while (reissue ? now < until : this.inFlight > 0) {
      for (let q = 0; q < queues; q++) {
        const n = t.reap(q);
        if (n === 0) continue;
        now = performance.now();
        for (let k = 0; k < n; k++) {
          const slot = t.completed[k];
          const i = slot.benchIndex;
          const submitted = startAt[i];
          if (submitted >= recordFrom) {
            this.hist.record((now - submitted) * 1e6);
            if (this.isWrite[i]) this.writes++;
            else this.reads++;
          }
          if (!t.ok(slot)) this.errors++;
          if (reissue) {
            this.issue(slot);
            startAt[i] = performance.now();
          } else {
            t.release(slot);
            this.inFlight--;
          }
        }
        if (reissue) t.kick(q);
      }
      now = performance.now();
    }
    return now;
  }

  private issue(slot: IoSlot): void {
    const i = slot.benchIndex;
    const unit = this.random ? this.rng.below(this.units) : this.seqCursor++ % this.units;
    const write = this.mixRead === 100 ? false : this.mixRead === 0 ? true : this.rng.below(100) >= this.mixRead;
    this.isWrite[i] = write ? 1 : 0;
    if (write && this.written) {
      this.generation = (this.generation + 1) >>> 0 || 1;
      this.written[unit] = this.generation;
      fillPattern(slot.data, this.bs, unit, this.generation);
    }
    if (!this.t.submit(slot, write, unit * this.bs, this.bs)) throw new Error('the ring had no room for a request within iodepth');
  }
}
