// epoll for reactors that sleep: wait on many fds, get back the tokens registered with them.
import { c, nativeScratch } from './libc.ts';
import { EINTR, lastErrno, throwErrno } from './errno.ts';

export const EPOLLIN = 0x001;
const EPOLL_CTL_ADD = 1;
const EPOLL_CTL_DEL = 2;
const EPOLL_CTL_MOD = 3;
const EPOLL_CLOEXEC = 0o2000000;
const EVENT_SIZE = 12; // struct epoll_event is packed on x86-64: u32 events, u64 data

export class Epoll {
  readonly fd: number;
  readonly maxEvents: number;
  /** After wait(): tokens of the ready fds in [0, n). */
  readonly tokens: Int32Array;
  private readonly ev = nativeScratch(EVENT_SIZE);
  private readonly out;
  /** out as int32 words: entry i's token (the low half of its u64 data) is word 3i + 1. */
  private readonly outWords: Int32Array;

  constructor(maxEvents = 64) {
    this.fd = c.epoll_create1(EPOLL_CLOEXEC);
    if (this.fd < 0) throwErrno('epoll_create1');
    this.maxEvents = maxEvents;
    this.tokens = new Int32Array(maxEvents);
    this.out = nativeScratch(EVENT_SIZE * maxEvents);
    this.outWords = new Int32Array(this.out.bytes.buffer, this.out.bytes.byteOffset, (EVENT_SIZE * maxEvents) >>> 2);
  }

  private ctl(op: number, fd: number, token: number, events: number): void {
    this.ev.dv.setUint32(0, events, true);
    this.ev.dv.setBigUint64(4, BigInt(token >>> 0), true);
    if (c.epoll_ctl(this.fd, op, fd, this.ev.bytes) < 0) throwErrno('epoll_ctl', `fd ${fd}`);
  }

  add(fd: number, token: number, events = EPOLLIN): void {
    this.ctl(EPOLL_CTL_ADD, fd, token, events);
  }

  modify(fd: number, token: number, events = EPOLLIN): void {
    this.ctl(EPOLL_CTL_MOD, fd, token, events);
  }

  remove(fd: number): void {
    if (c.epoll_ctl(this.fd, EPOLL_CTL_DEL, fd, this.ev.bytes) < 0) {
      // ENOENT/EBADF: the fd was already gone, which is what we wanted
      const e = lastErrno();
      if (e !== 2 && e !== 9) throwErrno('epoll_ctl(DEL)', `fd ${fd}`);
    }
  }

  /** Blocks up to timeoutMs (-1 = forever); returns how many tokens were filled. */
  wait(timeoutMs: number): number {
    const n = c.epoll_wait(this.fd, this.out.bytes, this.maxEvents, timeoutMs);
    if (n < 0) {
      if (lastErrno() === EINTR) return 0;
      throwErrno('epoll_wait');
    }
    // Read as int32, not getUint32() | 0: a token of -1 would be a heap number on the way.
    const w = this.outWords;
    for (let i = 0; i < n; i++) this.tokens[i] = w[3 * i + 1];
    return n;
  }

  close(): void {
    c.close(this.fd);
  }
}
