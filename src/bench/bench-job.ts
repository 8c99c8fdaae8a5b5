// A load-generator job (fio-like), validated.

export type RwMode = 'read' | 'write' | 'randread' | 'randwrite' | 'randrw' | 'rw';
export const RW_MODES: readonly RwMode[] = ['read', 'write', 'randread', 'randwrite', 'randrw', 'rw'];

export interface BenchJob {
  /** vhost-user socket of the target. */
  socket: string;
  device: 'scsi' | 'blk';
  rw: RwMode;
  /** Percentage of reads in rw / randrw. */
  rwmixread: number;
  /** Block size in bytes. */
  bs: number;
  /** I/Os in flight per queue. */
  iodepth: number;
  /** Request queues to use. */
  queues: number;
  /** Seconds of measurement, after the ramp. */
  runtime: number;
  /** Seconds of load before measuring. */
  ramp: number;
  /** Bytes of the device to use (0 = all of it). */
  size: number;
  /** Write a pattern and read it back afterwards, checking every block. */
  verify: boolean;
  /** CPU to pin the generator to (-1 = none). */
  cpu: number;
  /** Queue size of each virtqueue. */
  queueSize: number;
  /** SCSI target number (scsi only). */
  target: number;
  /** Use packed virtqueues. */
  packed: boolean;
  /** Seed of the random offsets (repeatable runs). */
  seed: number;
  /** Pid of the target, for its CPU usage (0 = from the socket's peer credentials). */
  targetPid: number;
  /** Guest memory on 2 MiB huge pages (SPDK's target requires it). */
  hugepages?: boolean;
  /** vhostd's RPC socket: report its reactors' GC over the measured window (vhostd_reactor_gc_*). */
  targetRpc?: string;
  /**
   * Between completions: 'spin' polls the used rings (default); 'interrupt' asks for call
   * eventfd signals and sleeps in poll(2) when a pass found nothing, as a guest driver with
   * interrupts does (so a server sharing the generator's CPU gets it while the generator waits).
   */
  wait?: 'spin' | 'interrupt';
}

export class BenchJobError extends Error {
  readonly code = 'BAD_BENCH_JOB';
}

/** Parses "4k", "128K", "1m", "512" into bytes. */
export function parseSize(s: string): number {
  const m = /^(\d+)([kKmMgG]?)[iI]?[bB]?$/.exec(s.trim());
  if (!m) throw new BenchJobError(`bad size '${s}': expected a number with optional k/m/g suffix`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Number(m[1]) * mult;
}

export function validateJob(j: BenchJob): BenchJob {
  const bad = (msg: string): never => {
    throw new BenchJobError(msg);
  };
  if (!j.socket) bad('a target socket is required (--socket PATH)');
  if (!RW_MODES.includes(j.rw)) bad(`--rw must be one of ${RW_MODES.join(', ')}`);
  if (!(j.bs >= 512 && j.bs % 512 === 0 && j.bs <= 1024 * 1024)) bad(`--bs ${j.bs}: a multiple of 512 up to 1 MiB`);
  if (!(Number.isInteger(j.iodepth) && j.iodepth >= 1 && j.iodepth <= 1024)) bad(`--iodepth ${j.iodepth}: 1..1024`);
  if (!(Number.isInteger(j.queues) && j.queues >= 1 && j.queues <= 32)) bad(`--queues ${j.queues}: 1..32`);
  if (!(j.runtime > 0 && j.runtime <= 3600)) bad(`--runtime ${j.runtime}: seconds in (0, 3600]`);
  if (!(j.ramp >= 0 && j.ramp <= 600)) bad(`--ramp ${j.ramp}: seconds in [0, 600]`);
  if (!(j.rwmixread >= 0 && j.rwmixread <= 100)) bad(`--rwmixread ${j.rwmixread}: 0..100`);
  if (!(Number.isInteger(j.queueSize) && j.queueSize >= 2 && j.queueSize <= 32768 && (j.packed || (j.queueSize & (j.queueSize - 1)) === 0))) {
    bad(`--queue-size ${j.queueSize}: a power of two (split rings) in [2, 32768]`);
  }
  if (j.iodepth > j.queueSize) bad(`--iodepth ${j.iodepth} exceeds --queue-size ${j.queueSize}`);
  if (j.size < 0 || j.size % j.bs !== 0) bad(`--size ${j.size}: a multiple of --bs`);
  if (j.wait !== undefined && j.wait !== 'spin' && j.wait !== 'interrupt') bad(`--wait ${String(j.wait)}: spin or interrupt`);
  return j;
}
