// Drives an lvol's channel from the test's own thread: submits, then polls the channel while
// letting the event loop run (the control plane's allocation handler runs there).
import { setImmediate as tick } from 'node:timers/promises';
import { BDEV_OK, type BdevChannel, type BdevIoWaiter } from '../../../src/bdev/bdev.ts';
import { openBdevChannel } from '../../../src/bdev/channel-open.ts';
import type { Bdev } from '../../../src/bdev/bdev.ts';
import { SgList } from '../../../src/iovec/sg-list.ts';

class Done implements BdevIoWaiter {
  status: number | null = null;
  bdevIoDone(status: number): void {
    this.status = status;
  }
}

export async function until(ch: BdevChannel, w: Done, timeoutMs = 10_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (w.status === null) {
    ch.poll();
    if (Date.now() > deadline) throw new Error('I/O did not complete');
    await tick();
  }
  // As a reactor's next turn would: the channel gives back its quiesce share once idle.
  ch.poll();
  return w.status;
}

export class LvolIo {
  readonly ch: BdevChannel;
  readonly bs: number;
  constructor(bdev: Bdev) {
    this.ch = openBdevChannel(bdev.channelSpec());
    this.bs = bdev.blockSize;
  }
  /** Starts a write and returns its waiter without waiting for it. */
  startWrite(offsetBytes: number, data: Uint8Array): Done {
    const sg = new SgList(1);
    sg.push(data, 0, data.length);
    const w = new Done();
    this.ch.write(offsetBytes / this.bs, data.length / this.bs, sg, 0, w);
    return w;
  }
  async write(offsetBytes: number, data: Uint8Array): Promise<number> {
    return until(this.ch, this.startWrite(offsetBytes, data));
  }
  async read(offsetBytes: number, len: number): Promise<Uint8Array> {
    const buf = new Uint8Array(len).fill(0xee);
    const sg = new SgList(1);
    sg.push(buf, 0, len);
    const w = new Done();
    this.ch.read(offsetBytes / this.bs, len / this.bs, sg, 0, w);
    const st = await until(this.ch, w);
    if (st !== BDEV_OK) throw new Error(`read failed: ${st}`);
    return buf;
  }
  async op(kind: 'unmap' | 'writeZeroes' | 'flush', offsetBytes: number, len: number): Promise<number> {
    const w = new Done();
    this.ch[kind](offsetBytes / this.bs, len / this.bs, w);
    return until(this.ch, w);
  }
  close(): void {
    this.ch.close();
  }
}

export function pattern(len: number, seed: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (i * 31 + seed * 7 + (i >> 9)) & 0xff;
  return b;
}
