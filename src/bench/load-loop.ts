// The load generator's hot loop: keeps iodepth requests in flight per queue, busy-polls used
// rings, records latencies. Synchronous on purpose: in an async function every local that lives
// across an await is kept boxed, and each double written to it (a timestamp per I/O) allocates.
import { performance } from 'node:perf_hooks';
import type { BenchJob } from './bench-job.ts';
import type { IoSlot, IoTarget } from './io-target.ts';
import { LatencyHistogram } from './latency-histogram.ts';
import { fillPattern } from './data-pattern.ts';

/**
 * Stores performance.now() into a[i]. The loop calls this instead of performance.now() itself:
 * in a large optimized function the inliner's budget is spent before it reaches now(), and a
 * non-inlined now() returns a fresh heap number (16 bytes per call, measured). In a small
 * function now() is inlined, and nothing crosses a call boundary as a double.
 */
function readClock(a: Float64Array, i: number): void {
  a[i] = performance.now();
}

/** hist.record(now - startAt[i]) in ns, in a small function for the same reason (no double argument crosses a call). */
function recordLatency(hist: LatencyHistogram, now: Float64Array, startAt: Float64Array, i: number): void {
  hist.record((now[0] - startAt[i]) * 1e6);
}

class Rng {
  /** xorshift32 state in a typed array: a uint32 above 2^31 in a field would be a heap number. */
  private readonly s = new Uint32Array(1);
  constructor(seed: number) {
    this.s[0] = seed >>> 0 || 0x9e3779b9;
  }
  /** Uniform integer in [0, n). */
  below(n: number): number {
    let x = this.s[0];
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s[0] = x;
    return n <= 4294967296 ? Math.floor((this.s[0] / 4294967296) * n) : Math.floor(Math.random() * n);
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
  private readonly clock = new Float64Array(1);
  private readonly interrupt: boolean;

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
    this.interrupt = job.wait === 'interrupt';
    if (this.interrupt) t.enableInterrupts();
  }

  /** Submits iodepth requests on every queue. */
  fill(iodepth: number): void {
    for (let q = 0; q < this.t.queues; q++) {
      for (let k = 0; k < iodepth; k++) {
        const s = this.t.acquire(q);
        if (!s) break;
        this.issue(s);
        readClock(this.startAt, s.benchIndex);
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
    const clock = this.clock;
    const interrupt = this.interrupt;
    readClock(clock, 0);
    while (reissue ? clock[0] < until : this.inFlight > 0) {
      let found = 0;
      for (let q = 0; q < queues; q++) {
        const n = t.reap(q);
        if (n === 0) continue;
        found += n;
        readClock(clock, 0);
        for (let k = 0; k < n; k++) {
          const slot = t.completed[k];
          const i = slot.benchIndex;
          if (startAt[i] >= recordFrom) {
            recordLatency(this.hist, clock, startAt, i);
            if (this.isWrite[i]) this.writes++;
            else this.reads++;
          }
          if (!t.ok(slot)) this.errors++;
          if (reissue) {
            this.issue(slot);
            readClock(startAt, i);
          } else {
            t.release(slot);
            this.inFlight--;
          }
        }
        if (reissue) t.kick(q);
      }
      if (interrupt && found === 0) t.waitForInterrupt(10);
      readClock(clock, 0);
    }
    return clock[0];
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
