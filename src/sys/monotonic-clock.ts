// CLOCK_MONOTONIC for loops that must not allocate (reactors, bdev channels). performance.now()
// returns a double, and whether that double becomes a 16-byte heap number depends on what the
// JIT inlined: in the reactor loop it did for some idle stretches and not others (up to ~15 bytes
// per I/O at QD1, seen in CI). Here clock_gettime fills a typed array and times are compared as
// whole seconds and nanoseconds, small integers in any tier of V8, so a reading never allocates.
import { c } from './libc.ts';
import { throwErrno } from './errno.ts';

const CLOCK_MONOTONIC = 1;
const NS_PER_S = 1_000_000_000;

export class MonotonicClock {
  /** struct timespec (two little-endian int64): tv_sec's low word at 0, tv_nsec's at 2. */
  private readonly ts = new Int32Array(4);

  /** Seconds since boot (fits 31 bits for 68 years) of the last read(). */
  get sec(): number {
    return this.ts[0];
  }

  /** Nanoseconds within that second, 0..999999999. */
  get nsec(): number {
    return this.ts[2];
  }

  /** Reads the clock (a vDSO call, no system call). */
  read(): void {
    if (c.clock_gettime(CLOCK_MONOTONIC, this.ts) !== 0) throwErrno('clock_gettime(CLOCK_MONOTONIC)');
  }
}

/** A point on the monotonic clock, kept as seconds and nanoseconds (both small integers). */
export class MonotonicDeadline {
  private sec = 0;
  private nsec = 0;

  /** Splits a delay into the (seconds, nanoseconds) pair set() takes; not for the data path. */
  static split(ns: number): { sec: number; nsec: number } {
    if (!Number.isSafeInteger(ns) || ns < 0) throw new RangeError(`delay ${ns} ns: a non-negative integer`);
    return { sec: Math.floor(ns / NS_PER_S), nsec: ns % NS_PER_S };
  }

  /** The deadline is the clock's last reading plus sec seconds and nsec (< 1e9) nanoseconds. */
  set(clock: MonotonicClock, sec: number, nsec: number): void {
    let s = clock.sec + sec;
    let n = clock.nsec + nsec;
    if (n >= NS_PER_S) {
      s++;
      n -= NS_PER_S;
    }
    this.sec = s;
    this.nsec = n;
  }

  /** Whether the clock's last reading is at or past the deadline. */
  passed(clock: MonotonicClock): boolean {
    const s = clock.sec;
    return s > this.sec || (s === this.sec && clock.nsec >= this.nsec);
  }
}
