// A tiny vhost-user back-end for front-end tests: records every message byte for byte (with its
// fds) and answers through a scripted responder. Its framing is written independently of
// src/frontend/vhost-user-channel.ts so the two check each other.
import { recvWithFds, sendWithFds } from '../../../src/sys/unix-socket.ts';
import { watchReadable, type FdWatch } from '../../../src/sys/fd-watch.ts';
import { closeFd, setNonBlocking } from '../../../src/sys/fd.ts';

export interface Received {
  request: number;
  flags: number;
  size: number;
  payload: Uint8Array;
  /** Header and payload as they arrived. */
  raw: Uint8Array;
  fds: number[];
}

export type Responder = (m: Received, fake: FakeBackend) => void;

export class FakeBackend {
  readonly fd: number;
  readonly received: Received[] = [];
  responder: Responder;
  eof = false;
  closed = false;
  error: Error | null = null;
  private readonly watch: FdWatch;
  private readonly header = new Uint8Array(12);
  private got = 0;
  private payload: Uint8Array | null = null;
  private payloadGot = 0;
  private fds: number[] = [];
  private waiters: (() => void)[] = [];

  constructor(fd: number, responder: Responder = () => {}) {
    this.fd = fd;
    this.responder = responder;
    setNonBlocking(fd);
    this.watch = watchReadable(fd, () => {
      try {
        this.onReadable();
      } catch (e) {
        this.error = e as Error; // never throw out of a poll callback
      }
    });
  }

  private onReadable(): void {
    while (!this.closed) {
      const dst = this.payload ?? this.header;
      const off = this.payload ? this.payloadGot : this.got;
      if (this.payload && this.payloadGot === this.payload.length) {
        this.deliver();
        continue;
      }
      const r = recvWithFds(this.fd, dst, off, dst.length - off);
      if (r === null) return;
      this.fds.push(...r.fds);
      if (r.bytes === 0) {
        this.eof = true;
        this.watch.stop();
        this.wake();
        return;
      }
      if (this.payload) {
        this.payloadGot += r.bytes;
      } else {
        this.got += r.bytes;
        if (this.got === 12) {
          this.payload = new Uint8Array(new DataView(this.header.buffer).getUint32(8, true));
          this.payloadGot = 0;
        }
      }
      if (this.payload && this.payloadGot === this.payload.length) this.deliver();
    }
  }

  private deliver(): void {
    const dv = new DataView(this.header.buffer);
    const payload = this.payload ?? new Uint8Array(0);
    const raw = new Uint8Array(12 + payload.length);
    raw.set(this.header);
    raw.set(payload, 12);
    const m: Received = { request: dv.getUint32(0, true), flags: dv.getUint32(4, true), size: dv.getUint32(8, true), payload, raw, fds: this.fds };
    this.fds = [];
    this.payload = null;
    this.got = 0;
    this.received.push(m);
    this.responder(m, this);
    this.wake();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves once count messages have arrived (or the peer closed). */
  async waitFor(count: number, timeoutMs = 2000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length < count && !this.eof) {
      if (Date.now() > deadline) throw new Error(`fake back-end: ${this.received.length} of ${count} messages after ${timeoutMs} ms`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 20);
      });
    }
  }

  send(request: number, flags: number, payload: Uint8Array, fds: number[] = []): void {
    const b = new Uint8Array(12 + payload.length);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, request, true);
    dv.setUint32(4, flags, true);
    dv.setUint32(8, payload.length, true);
    b.set(payload, 12);
    sendWithFds(this.fd, b, fds);
  }

  /** Sends arbitrary bytes (part of a message) with fds on the first byte. */
  sendRawPiece(bytes: Uint8Array, fds: number[] = []): void {
    sendWithFds(this.fd, bytes, fds);
  }

  reply(m: Received, payload: Uint8Array, fds: number[] = []): void {
    this.send(m.request, 0x5, payload, fds);
  }

  replyU64(m: Received, v: bigint | number): void {
    this.reply(m, u64(v));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.watch.stop();
    for (const m of this.received) for (const f of m.fds) closeFd(f);
    for (const f of this.fds) closeFd(f);
    this.received.length = 0;
    closeFd(this.fd);
  }
}

export function u64(v: bigint | number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
  return b;
}

export interface StandardBackendState {
  features: bigint;
  protocolFeatures: bigint;
  queueNum: number;
  maxMemSlots: number;
  config: Uint8Array;
  status: number;
  vringBases: Map<number, number>;
}

/** Answers like a well-behaved back-end: every GET gets its reply, NEED_REPLY gets an ack of 0. */
export function standardResponder(state: StandardBackendState): Responder {
  return (m, fake) => {
    const dv = new DataView(m.payload.buffer, m.payload.byteOffset, m.payload.byteLength);
    switch (m.request) {
      case 1: return fake.replyU64(m, state.features);
      case 15: return fake.replyU64(m, state.protocolFeatures);
      case 17: return fake.replyU64(m, state.queueNum);
      case 36: return fake.replyU64(m, state.maxMemSlots);
      case 40: return fake.replyU64(m, state.status);
      case 6: return fake.replyU64(m, 0);
      case 11: {
        const idx = dv.getUint32(0, true);
        const out = new Uint8Array(8);
        const o = new DataView(out.buffer);
        o.setUint32(0, idx, true);
        o.setUint32(4, state.vringBases.get(idx) ?? 0, true);
        return fake.reply(m, out);
      }
      case 24: {
        const offset = dv.getUint32(0, true);
        const size = dv.getUint32(4, true);
        const out = new Uint8Array(12 + size);
        out.set(m.payload.subarray(0, 12));
        out.set(state.config.subarray(offset, offset + size), 12);
        return fake.reply(m, out);
      }
      case 31: return fake.reply(m, new Uint8Array(24)); // mmap_size 0: inflight declined
      case 39: state.status = Number(dv.getBigUint64(0, true));
    }
    if (m.flags & 0x8) fake.replyU64(m, 0);
  };
}
