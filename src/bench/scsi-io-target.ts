// The load generator's virtio-scsi target: READ(16)/WRITE(16) through the front-end's fast API.
import { GuestMemoryArena } from '../frontend/guest-memory-arena.ts';
import { connectLikeQemu, type QemuLikeSession } from '../frontend/qemu-like-session.ts';
import { VirtioScsiDriver } from '../frontend/virtio-scsi-driver.ts';
import type { ScsiRequestSlot } from '../frontend/scsi-request-slot.ts';
import type { DriverQueue } from '../frontend/driver-queue.ts';
import type { IoSlot, IoTarget } from './io-target.ts';
import type { BenchJob } from './bench-job.ts';
import { arenaSpecsFor } from './arena-size.ts';
import { InterruptWait } from './interrupt-wait.ts';

const READ_16 = 0x88;
const WRITE_16 = 0x8a;
const READ_CAPACITY_16 = [0x9e, 0x10];

type BenchScsiSlot = ScsiRequestSlot & { benchIndex: number; queue: number };

export class ScsiIoTarget implements IoTarget {
  readonly queues: number;
  readonly slotsPerQueue: number;
  blockSize = 512;
  capacityBytes = 0;
  readonly slots: IoSlot[] = [];
  readonly completed: IoSlot[] = [];
  private readonly arena: GuestMemoryArena;
  private readonly session: QemuLikeSession<DriverQueue>;
  private readonly drv: VirtioScsiDriver;
  private readonly interrupts: InterruptWait;
  private readonly target: number;

  private constructor(arena: GuestMemoryArena, session: QemuLikeSession<DriverQueue>, drv: VirtioScsiDriver, job: BenchJob) {
    this.arena = arena;
    this.session = session;
    this.drv = drv;
    this.queues = job.queues;
    this.slotsPerQueue = job.iodepth;
    this.target = job.target;
    for (const s of drv.slots) {
      const b = s as BenchScsiSlot;
      b.benchIndex = this.slots.length;
      b.queue = s.queueIndex;
      b.setAddress(job.target, 0);
      this.slots.push(b);
    }
    for (let i = 0; i < this.slots.length; i++) this.completed.push(this.slots[0]);
    for (const q of drv.requestQueues) q.disableCalls();
    this.interrupts = new InterruptWait(drv.requestQueues);
  }

  static async connect(job: BenchJob): Promise<ScsiIoTarget> {
    const arena = new GuestMemoryArena(arenaSpecsFor(job));
    try {
      const queueSizes = [16, 16, ...new Array<number>(job.queues).fill(job.queueSize)];
      const session: QemuLikeSession<DriverQueue> = job.packed
        ? await connectLikeQemu({ socketPath: job.socket, arena, queueSizes, packed: true })
        : await connectLikeQemu({ socketPath: job.socket, arena, queueSizes });
      const drv = VirtioScsiDriver.fromSession(session, { maxDataBytes: Math.max(job.bs, 4096), slotsPerQueue: job.iodepth, completion: 'manual', indirect: true });
      drv.start();
      const t = new ScsiIoTarget(arena, session, drv, job);
      await t.readCapacity();
      return t;
    } catch (e) {
      arena.close();
      throw e;
    }
  }

  /** Runs one command on queue 0 synchronously (spinning); used before the measured run. */
  private async command(cdb: readonly number[], dataIn: number): Promise<ScsiRequestSlot> {
    const slot = this.drv.acquire(0)!;
    slot.cdb.fill(0);
    slot.cdb.set(cdb);
    slot.cdbLen = 16;
    slot.dataOutLen = 0;
    slot.dataInLen = dataIn;
    this.drv.submit(slot);
    this.drv.kick(0);
    const deadline = Date.now() + 5000;
    for (;;) {
      if (this.drv.reap(0) > 0) break;
      if (Date.now() > deadline) throw new Error('the target did not answer a SCSI command within 5 s');
      await new Promise((r) => setImmediate(r));
    }
    this.drv.release(slot);
    return slot;
  }

  private async readCapacity(): Promise<void> {
    // The first command may carry the power-on unit attention: ask twice.
    for (let attempt = 0; attempt < 3; attempt++) {
      const s = await this.command([...READ_CAPACITY_16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0], 32);
      if (s.resp.response !== 0) throw new Error(`SCSI target ${this.target}: virtio-scsi response ${s.resp.response} (no such target?)`);
      if (s.resp.status !== 0) continue;
      const d = new DataView(s.data.buffer, s.data.byteOffset + s.dataInOffset, 32);
      this.blockSize = d.getUint32(8);
      this.capacityBytes = (Number(d.getBigUint64(0)) + 1) * this.blockSize;
      return;
    }
    throw new Error(`SCSI target ${this.target}: READ CAPACITY(16) keeps failing`);
  }

  acquire(queue: number): IoSlot | null {
    return this.drv.acquire(queue) as BenchScsiSlot | null;
  }

  submit(slot: IoSlot, write: boolean, offset: number, len: number): boolean {
    const s = slot as BenchScsiSlot;
    const cdb = s.cdb;
    const lba = offset / this.blockSize;
    const blocks = len / this.blockSize;
    cdb[0] = write ? WRITE_16 : READ_16;
    cdb[1] = 0;
    const hi = Math.floor(lba / 4294967296);
    const lo = lba >>> 0;
    cdb[2] = hi >>> 24;
    cdb[3] = (hi >>> 16) & 0xff;
    cdb[4] = (hi >>> 8) & 0xff;
    cdb[5] = hi & 0xff;
    cdb[6] = lo >>> 24;
    cdb[7] = (lo >>> 16) & 0xff;
    cdb[8] = (lo >>> 8) & 0xff;
    cdb[9] = lo & 0xff;
    cdb[10] = blocks >>> 24;
    cdb[11] = (blocks >>> 16) & 0xff;
    cdb[12] = (blocks >>> 8) & 0xff;
    cdb[13] = blocks & 0xff;
    cdb[14] = 0;
    cdb[15] = 0;
    s.cdbLen = 16;
    s.dataOutLen = write ? len : 0;
    s.dataInLen = write ? 0 : len;
    return this.drv.submit(s);
  }

  kick(queue: number): void {
    this.drv.kick(queue);
  }

  reap(queue: number): number {
    const n = this.drv.reap(queue);
    const c = this.drv.completed;
    for (let i = 0; i < n; i++) this.completed[i] = c[i] as BenchScsiSlot;
    return n;
  }

  ok(slot: IoSlot): boolean {
    const s = slot as BenchScsiSlot;
    return s.resp.response === 0 && s.resp.status === 0;
  }

  release(slot: IoSlot): void {
    this.drv.release(slot as BenchScsiSlot);
  }

  enableInterrupts(): void {
    this.interrupts.enable();
  }

  waitForInterrupt(timeoutMs: number): void {
    this.interrupts.wait(timeoutMs);
  }

  targetPid(): number {
    return this.session.client.peerPid();
  }

  async close(): Promise<void> {
    this.drv.close();
    await this.session.stop().catch(() => {});
    this.session.close();
    this.arena.close();
  }
}
