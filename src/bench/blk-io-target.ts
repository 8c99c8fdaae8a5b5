// The load generator's virtio-blk target: IN/OUT requests through the front-end's fast API.
import { GuestMemoryArena } from '../frontend/guest-memory-arena.ts';
import { connectLikeQemuBlk, type QemuBlkConnection } from '../frontend/qemu-like-blk.ts';
import type { BlkRequestSlot } from '../frontend/blk-request-slot.ts';
import type { IoSlot, IoTarget } from './io-target.ts';
import type { BenchJob } from './bench-job.ts';
import { arenaSpecsFor } from './arena-size.ts';
import { InterruptWait } from './interrupt-wait.ts';

const VIRTIO_BLK_T_IN = 0;
const VIRTIO_BLK_T_OUT = 1;

type BenchBlkSlot = BlkRequestSlot & { benchIndex: number; queue: number };

export class BlkIoTarget implements IoTarget {
  readonly queues: number;
  readonly slotsPerQueue: number;
  readonly blockSize: number;
  readonly capacityBytes: number;
  readonly slots: IoSlot[] = [];
  readonly completed: IoSlot[] = [];
  private readonly arena: GuestMemoryArena;
  private readonly conn: QemuBlkConnection;
  private readonly interrupts: InterruptWait;

  private constructor(arena: GuestMemoryArena, conn: QemuBlkConnection, job: BenchJob) {
    this.arena = arena;
    this.conn = conn;
    this.queues = job.queues;
    this.slotsPerQueue = job.iodepth;
    const cfg = conn.config;
    this.blockSize = cfg.blkSize || 512;
    this.capacityBytes = cfg.capacity * 512;
    for (const s of conn.driver.slots) {
      const b = s as BenchBlkSlot;
      b.benchIndex = this.slots.length;
      b.queue = s.queueIndex;
      this.slots.push(b);
    }
    for (let i = 0; i < this.slots.length; i++) this.completed.push(this.slots[0]);
    for (const q of conn.driver.requestQueues) q.disableCalls();
    this.interrupts = new InterruptWait(conn.driver.requestQueues);
  }

  static async connect(job: BenchJob): Promise<BlkIoTarget> {
    const arena = new GuestMemoryArena(arenaSpecsFor(job));
    try {
      const conn = await connectLikeQemuBlk({
        socketPath: job.socket,
        arena,
        numQueues: job.queues,
        queueSize: job.queueSize,
        ...(job.packed ? { packed: true } : {}),
        driver: { maxDataBytes: Math.max(job.bs, 4096), slotsPerQueue: job.iodepth, completion: 'manual', indirect: true },
      });
      return new BlkIoTarget(arena, conn, job);
    } catch (e) {
      arena.close();
      throw e;
    }
  }

  acquire(queue: number): IoSlot | null {
    return this.conn.driver.acquire(queue) as BenchBlkSlot | null;
  }

  submit(slot: IoSlot, write: boolean, offset: number, len: number): boolean {
    const s = slot as BenchBlkSlot;
    s.type = write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
    s.sector = offset / 512;
    s.dataOutLen = write ? len : 0;
    s.dataInLen = write ? 0 : len;
    return this.conn.driver.submit(s);
  }

  kick(queue: number): void {
    this.conn.driver.kick(queue);
  }

  reap(queue: number): number {
    const d = this.conn.driver;
    const n = d.reap(queue);
    for (let i = 0; i < n; i++) this.completed[i] = d.completed[i] as BenchBlkSlot;
    return n;
  }

  ok(slot: IoSlot): boolean {
    return (slot as BenchBlkSlot).status === 0;
  }

  release(slot: IoSlot): void {
    this.conn.driver.release(slot as BenchBlkSlot);
  }

  enableInterrupts(): void {
    this.interrupts.enable();
  }

  waitForInterrupt(timeoutMs: number): void {
    this.interrupts.wait(timeoutMs);
  }

  targetPid(): number {
    return this.conn.session.client.peerPid();
  }

  async close(): Promise<void> {
    await this.conn.stop().catch(() => {});
    this.conn.close();
    this.arena.close();
  }
}
