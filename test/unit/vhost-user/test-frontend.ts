// Test-only front-end side of a vhost-user socket: frames requests and reads replies. The real
// front-end library lives in src/frontend/; these tests do not depend on it.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { recvWithFds, sendWithFds } from '../../../src/sys/unix-socket.ts';
import { closeFd } from '../../../src/sys/fd.ts';
import { VHOST_USER_NEED_REPLY_MASK, VHOST_USER_VERSION } from '../../../src/vhost-user/message-types.ts';

export interface RawMessage {
  request: number;
  flags: number;
  size: number;
  payload: Uint8Array;
  fds: number[];
}

export function hex(s: string): Uint8Array {
  const clean = s.replace(/\s+/g, '');
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function u64(v: bigint | number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
  return b;
}

export function state(index: number, num: number): Uint8Array {
  const b = new Uint8Array(8);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, index, true);
  dv.setUint32(4, num, true);
  return b;
}

export function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls cond (letting the event loop run) until it holds or the time is up. */
export async function until(cond: () => boolean, what: string, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(1);
  }
}

export class TestFrontEnd {
  readonly fd: number;
  private pending = new Uint8Array(0);
  private pendingFds: number[] = [];
  private eof = false;

  constructor(fd: number) {
    this.fd = fd;
  }

  /** Sends one request; flags default to version 1 (add NEED_REPLY with needReply). */
  send(request: number, payload: Uint8Array = new Uint8Array(0), opts: { fds?: number[]; needReply?: boolean; flags?: number } = {}): void {
    const flags = opts.flags ?? (VHOST_USER_VERSION | (opts.needReply ? VHOST_USER_NEED_REPLY_MASK : 0));
    const msg = new Uint8Array(12 + payload.length);
    const dv = new DataView(msg.buffer);
    dv.setUint32(0, request, true);
    dv.setUint32(4, flags, true);
    dv.setUint32(8, payload.length, true);
    msg.set(payload, 12);
    sendWithFds(this.fd, msg, opts.fds ?? []);
  }

  sendRaw(bytes: Uint8Array, fds: number[] = []): void {
    sendWithFds(this.fd, bytes, fds);
  }

  private fill(): void {
    const buf = new Uint8Array(4096);
    for (;;) {
      const r = recvWithFds(this.fd, buf, 0, buf.length);
      if (r === null) return;
      this.pendingFds.push(...r.fds);
      if (r.bytes === 0) {
        this.eof = true;
        return;
      }
      const next = new Uint8Array(this.pending.length + r.bytes);
      next.set(this.pending);
      next.set(buf.subarray(0, r.bytes), this.pending.length);
      this.pending = next;
    }
  }

  private take(): RawMessage | null {
    if (this.pending.length < 12) return null;
    const dv = new DataView(this.pending.buffer, this.pending.byteOffset);
    const size = dv.getUint32(8, true);
    if (this.pending.length < 12 + size) return null;
    const msg = { request: dv.getUint32(0, true), flags: dv.getUint32(4, true), size, payload: this.pending.slice(12, 12 + size), fds: this.pendingFds };
    this.pending = this.pending.slice(12 + size);
    this.pendingFds = [];
    return msg;
  }

  /** The next message from the back-end. */
  async read(ms = 2000): Promise<RawMessage> {
    const end = Date.now() + ms;
    for (;;) {
      this.fill();
      const m = this.take();
      if (m) return m;
      if (this.eof) assert.fail('back-end closed the connection instead of replying');
      if (Date.now() > end) assert.fail('timed out waiting for a reply');
      await sleep(1);
    }
  }

  /** The next reply, checked to answer `request` with flags exactly 0x5. */
  async reply(request: number): Promise<RawMessage> {
    const m = await this.read();
    assert.equal(m.request, request, `reply to request ${request}`);
    assert.equal(m.flags, 0x5, 'reply flags must be exactly VERSION | REPLY');
    return m;
  }

  async replyU64(request: number): Promise<bigint> {
    const m = await this.reply(request);
    assert.equal(m.size, 8);
    return new DataView(m.payload.buffer).getBigUint64(0, true);
  }

  /** Sends with NEED_REPLY and returns the REPLY_ACK value (0 = success). */
  async call(request: number, payload: Uint8Array = new Uint8Array(0), fds: number[] = []): Promise<bigint> {
    this.send(request, payload, { fds, needReply: true });
    return this.replyU64(request);
  }

  /** Resolves when the back-end closed its end. */
  async closedByPeer(ms = 2000): Promise<void> {
    const end = Date.now() + ms;
    for (;;) {
      this.fill();
      if (this.eof) return;
      if (Date.now() > end) assert.fail('back-end did not close the connection');
      await sleep(1);
    }
  }

  /** Asserts nothing arrives within ms. */
  async nothing(ms = 30): Promise<void> {
    await sleep(ms);
    this.fill();
    assert.equal(this.pending.length, 0, 'unexpected bytes from the back-end');
  }

  close(): void {
    for (const f of this.pendingFds) closeFd(f);
    closeFd(this.fd);
  }
}
