// A delay bdev's per-thread channel: I/O goes to the base channel at once, and its completion is
// handed on at the first poll() after both the base completed and the latency passed.
// Preallocated records (the pool only grows to the deepest queue seen): nothing allocated per I/O.
import { performance } from 'node:perf_hooks';
import type { BdevChannel, BdevChannelSpec, BdevIoWaiter } from '../bdev.ts';
import { BdevError } from '../bdev-error.ts';
import type { SgList } from '../../iovec/sg-list.ts';
import { checkLatency, type DelayChannelSpec } from './delay.ts';

class DelayedIo implements BdevIoWaiter {
  waiter: BdevIoWaiter | null = null;
  due = 0;
  status = 0;
  done = false;
  bdevIoDone(status: number): void {
    this.status = status;
    this.done = true;
  }
}

export class DelayChannel implements BdevChannel {
  readonly name: string;
  readonly blockSize: number;
  numBlocks: number;
  private readonly base: BdevChannel;
  private readonly readMs: number;
  private readonly writeMs: number;
  private readonly free: DelayedIo[] = [];
  private readonly active: DelayedIo[] = [];

  constructor(spec: DelayChannelSpec, open: (spec: BdevChannelSpec) => BdevChannel) {
    if (typeof spec.base !== 'object' || spec.base === null) throw new BdevError('BDEV_INVALID_SPEC', `delay channel '${spec.name}': no base bdev`);
    this.readMs = checkLatency('readLatencyUs', spec.readLatencyUs) / 1000;
    this.writeMs = checkLatency('writeLatencyUs', spec.writeLatencyUs) / 1000;
    this.base = open(spec.base);
    this.name = spec.name;
    this.blockSize = this.base.blockSize;
    this.numBlocks = this.base.numBlocks;
  }

  private hold(waiter: BdevIoWaiter, ms: number): DelayedIo {
    const io = this.free.pop() ?? new DelayedIo();
    io.waiter = waiter;
    io.due = performance.now() + ms;
    io.done = false;
    this.active.push(io);
    return io;
  }

  read(offsetBlocks: number, numBlocks: number, sg: SgList, sgOffset: number, waiter: BdevIoWaiter): void {
    this.base.read(offsetBlocks, numBlocks, sg, sgOffset, this.hold(waiter, this.readMs));
  }

  write(offsetBlocks: number, numBlocks: number, sg: SgList, sgOffset: number, waiter: BdevIoWaiter): void {
    this.base.write(offsetBlocks, numBlocks, sg, sgOffset, this.hold(waiter, this.writeMs));
  }

  flush(offsetBlocks: number, numBlocks: number, waiter: BdevIoWaiter): void {
    this.base.flush(offsetBlocks, numBlocks, waiter);
  }

  unmap(offsetBlocks: number, numBlocks: number, waiter: BdevIoWaiter): void {
    this.base.unmap(offsetBlocks, numBlocks, waiter);
  }

  writeZeroes(offsetBlocks: number, numBlocks: number, waiter: BdevIoWaiter): void {
    this.base.writeZeroes(offsetBlocks, numBlocks, waiter);
  }

  poll(): number {
    let n = this.base.poll();
    const a = this.active;
    if (a.length === 0) return n;
    const now = performance.now();
    // Compacts in place, keeping submission order; completions may submit more (pushed at the end).
    let kept = 0;
    const len = a.length;
    for (let i = 0; i < len; i++) {
      const io = a[i];
      if (io.done && io.due <= now) {
        const w = io.waiter!;
        io.waiter = null;
        this.free.push(io);
        w.bdevIoDone(io.status);
        n++;
      } else {
        a[kept++] = io;
      }
    }
    // Entries pushed by completions during the loop sit after `len`: move them down.
    for (let i = len; i < a.length; i++) a[kept++] = a[i];
    a.length = kept;
    return n;
  }

  inflight(): number {
    return this.active.length + this.base.inflight();
  }

  resize(numBlocks: number): void {
    this.base.resize(numBlocks);
    this.numBlocks = this.base.numBlocks;
  }

  close(): void {
    this.base.close();
  }
}
