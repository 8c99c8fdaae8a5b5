// Test fixtures for the SCSI layer: a RAM-backed BdevChannel (synchronous, or asynchronous with
// completions delivered by poll()), task construction over split SgLists, and sense decoding.
import type { BdevChannel, BdevIoWaiter } from '../../../src/bdev/bdev.ts';
import { BDEV_EINVAL, BDEV_ENOTSUP, BDEV_OK } from '../../../src/bdev/bdev.ts';
import { SgList } from '../../../src/iovec/sg-list.ts';
import { ScsiTask, type ScsiTaskWaiter } from '../../../src/scsi/scsi-task.ts';
import { ScsiLun } from '../../../src/scsi/scsi-lun.ts';
import type { ScsiLunInfo } from '../../../src/scsi/scsi-lun-info.ts';

export interface ChannelCall {
  op: 'read' | 'write' | 'flush' | 'unmap' | 'writeZeroes';
  lba: number;
  blocks: number;
}

interface Pending {
  waiter: BdevIoWaiter;
  action: () => number;
}

export class RamChannel implements BdevChannel {
  readonly name = 'ram0';
  readonly blockSize: number;
  numBlocks: number;
  store: Uint8Array;
  /** Complete from poll() instead of inside the call. */
  async = false;
  writeZeroesSupported = true;
  /** Status forced on the next call (then reset to OK). */
  failNext = BDEV_OK;
  readonly calls: ChannelCall[] = [];
  private readonly pending: Pending[] = [];

  constructor(blockSize: number, numBlocks: number) {
    this.blockSize = blockSize;
    this.numBlocks = numBlocks;
    this.store = new Uint8Array(blockSize * numBlocks);
  }

  private submit(call: ChannelCall, waiter: BdevIoWaiter, action: () => number): void {
    this.calls.push(call);
    const forced = this.failNext;
    this.failNext = BDEV_OK;
    const act = (): number => {
      if (forced !== BDEV_OK) return forced;
      if (call.lba + call.blocks > this.numBlocks) return BDEV_EINVAL;
      return action();
    };
    if (this.async) this.pending.push({ waiter, action: act });
    else waiter.bdevIoDone(act());
  }

  read(lba: number, n: number, sg: SgList, sgOffset: number, waiter: BdevIoWaiter): void {
    const bs = this.blockSize;
    this.submit({ op: 'read', lba, blocks: n }, waiter, () => {
      sg.copyIn(sgOffset, this.store, lba * bs, n * bs);
      return BDEV_OK;
    });
  }

  write(lba: number, n: number, sg: SgList, sgOffset: number, waiter: BdevIoWaiter): void {
    const bs = this.blockSize;
    this.submit({ op: 'write', lba, blocks: n }, waiter, () => {
      sg.copyOut(sgOffset, this.store, lba * bs, n * bs);
      return BDEV_OK;
    });
  }

  flush(lba: number, n: number, waiter: BdevIoWaiter): void {
    this.submit({ op: 'flush', lba, blocks: n }, waiter, () => BDEV_OK);
  }

  unmap(lba: number, n: number, waiter: BdevIoWaiter): void {
    const bs = this.blockSize;
    this.submit({ op: 'unmap', lba, blocks: n }, waiter, () => {
      this.store.fill(0, lba * bs, (lba + n) * bs);
      return BDEV_OK;
    });
  }

  writeZeroes(lba: number, n: number, waiter: BdevIoWaiter): void {
    const bs = this.blockSize;
    this.submit({ op: 'writeZeroes', lba, blocks: n }, waiter, () => {
      if (!this.writeZeroesSupported) return BDEV_ENOTSUP;
      this.store.fill(0, lba * bs, (lba + n) * bs);
      return BDEV_OK;
    });
  }

  get pendingCount(): number {
    return this.pending.length;
  }

  inflight(): number {
    return this.pending.length;
  }

  poll(): number {
    const batch = this.pending.splice(0);
    for (const p of batch) p.waiter.bdevIoDone(p.action());
    return batch.length;
  }

  resize(numBlocks: number): void {
    const store = new Uint8Array(numBlocks * this.blockSize);
    store.set(this.store.subarray(0, Math.min(this.store.length, store.length)));
    this.store = store;
    this.numBlocks = numBlocks;
  }

  close(): void {}
}

export const TEST_UUID = '6f1a3c2e-9b4d-4e21-8a7f-0c5d9e8b7a61';

export function lunInfo(over: Partial<ScsiLunInfo> = {}): ScsiLunInfo {
  return {
    bdevName: 'Malloc0',
    uuid: TEST_UUID,
    productName: 'Malloc disk',
    readOnly: false,
    writeCache: true,
    unmapSupported: true,
    unmapReadsZero: true,
    optimalIoBoundary: 0,
    ...over,
  };
}

/** A LUN over a fresh RAM channel, with its power-on unit attention already consumed. */
export function makeLun(
  opts: { blockSize?: number; numBlocks?: number; info?: Partial<ScsiLunInfo>; id?: number; keepUnitAttention?: boolean } = {},
): { lun: ScsiLun; ch: RamChannel } {
  const ch = new RamChannel(opts.blockSize ?? 512, opts.numBlocks ?? 64);
  const lun = new ScsiLun(opts.id ?? 0, lunInfo(opts.info), ch);
  if (!opts.keepUnitAttention) lun.unitAttention.clear();
  return { lun, ch };
}

export class Recorder implements ScsiTaskWaiter {
  readonly done: ScsiTask[] = [];
  scsiTaskDone(task: ScsiTask): void {
    this.done.push(task);
  }
}

/** Splits buf into an SgList of segments of at most `seg` bytes (to exercise scatter-gather). */
export function sgOf(buf: Uint8Array, seg = 7): SgList {
  const sg = new SgList(Math.max(1, Math.ceil(buf.length / seg)));
  for (let o = 0; o < buf.length; o += seg) sg.push(buf, o, Math.min(seg, buf.length - o));
  return sg;
}

export interface TaskOpts {
  /** Data-in window size (bytes). */
  inLen?: number;
  /** Data-out bytes. */
  out?: Uint8Array;
  tagLo?: number;
  tagHi?: number;
  cdbLength?: number;
}

export interface BuiltTask {
  task: ScsiTask;
  rec: Recorder;
  /** The data-in window's bytes (after the command ran). */
  dataIn: Uint8Array;
}

export function buildTask(cdb: number[], opts: TaskOpts = {}): BuiltTask {
  const task = new ScsiTask();
  task.cdb.set(cdb);
  task.cdbLength = opts.cdbLength ?? 32;
  task.tagLo = opts.tagLo ?? 0;
  task.tagHi = opts.tagHi ?? 0;
  const rec = new Recorder();
  task.waiter = rec;
  // Windows start at an offset inside the list, as a transport places them after its headers.
  let dataIn = new Uint8Array(0);
  if (opts.inLen !== undefined) {
    const backing = new Uint8Array(3 + opts.inLen + 4);
    task.dataIn = sgOf(backing);
    task.dataInOffset = 3;
    task.dataInLength = opts.inLen;
    dataIn = backing.subarray(3, 3 + opts.inLen);
  }
  if (opts.out !== undefined) {
    const backing = new Uint8Array(5 + opts.out.length);
    backing.set(opts.out, 5);
    task.dataOut = sgOf(backing);
    task.dataOutOffset = 5;
    task.dataOutLength = opts.out.length;
  }
  return { task, rec, dataIn };
}

/** Runs a command that must complete synchronously; returns the task and its data-in bytes. */
export function run(lun: { execute(task: ScsiTask): void }, cdb: number[], opts: TaskOpts = {}): BuiltTask {
  const b = buildTask(cdb, opts);
  lun.execute(b.task);
  if (b.rec.done.length !== 1) throw new Error(`command 0x${cdb[0].toString(16)} completed ${b.rec.done.length} times, expected once synchronously`);
  return b;
}

export interface Sense {
  key: number;
  asc: number;
  ascq: number;
  /** Fixed format INFORMATION when VALID, else -1. */
  info: number;
  /** Sense-key specific bytes (SKSV set) as 24 bits, else -1. */
  sks: number;
}

/** Decodes fixed (0x70) or descriptor (0x72) sense. */
export function decodeSense(s: Uint8Array): Sense {
  const code = s[0] & 0x7f;
  if (code === 0x72) {
    const r: Sense = { key: s[1] & 0x0f, asc: s[2], ascq: s[3], info: -1, sks: -1 };
    const end = 8 + s[7];
    for (let o = 8; o < end; o += 2 + s[o + 1]) {
      if (s[o] === 0x00 && s[o + 2] & 0x80) r.info = Number(new DataView(s.buffer, s.byteOffset + o + 4, 8).getBigUint64(0));
      if (s[o] === 0x02) r.sks = (s[o + 4] << 16) | (s[o + 5] << 8) | s[o + 6];
    }
    return r;
  }
  if (code !== 0x70) throw new Error(`unexpected sense response code 0x${code.toString(16)}`);
  return {
    key: s[2] & 0x0f,
    asc: s[12],
    ascq: s[13],
    info: s[0] & 0x80 ? ((s[3] << 24) >>> 0) + ((s[4] << 16) | (s[5] << 8) | s[6]) : -1,
    sks: s[15] & 0x80 ? (s[15] << 16) | (s[16] << 8) | s[17] : -1,
  };
}

/** [status, key, asc, ascq] of a completed task (key/asc/ascq -1 without sense). */
export function outcome(task: ScsiTask): [number, number, number, number] {
  if (task.senseLength === 0) return [task.status, -1, -1, -1];
  const s = decodeSense(task.sense);
  return [task.status, s.key, s.asc, s.ascq];
}

export function be32(b: Uint8Array, o: number): number {
  return new DataView(b.buffer, b.byteOffset).getUint32(o);
}

export function be64(b: Uint8Array, o: number): number {
  return Number(new DataView(b.buffer, b.byteOffset).getBigUint64(o));
}

export function be16(b: Uint8Array, o: number): number {
  return new DataView(b.buffer, b.byteOffset).getUint16(o);
}

/** A CDB field writer for tests: big-endian value v over n bytes at o. */
export function put(cdb: number[], o: number, n: number, v: number): number[] {
  let x = BigInt(v);
  for (let i = n - 1; i >= 0; i--, x >>= 8n) cdb[o + i] = Number(x & 0xffn);
  return cdb;
}

export function cdb16(op: number, lba: number, blocks: number, byte1 = 0): number[] {
  const c = new Array<number>(16).fill(0);
  c[0] = op;
  c[1] = byte1;
  put(c, 2, 8, lba);
  put(c, 10, 4, blocks);
  return c;
}

export function cdb10(op: number, lba: number, blocks: number, byte1 = 0): number[] {
  const c = new Array<number>(10).fill(0);
  c[0] = op;
  c[1] = byte1;
  put(c, 2, 4, lba);
  put(c, 7, 2, blocks);
  return c;
}

/** A deterministic pattern: byte i = (seed + i * 7) & 0xff. */
export function pattern(len: number, seed: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (seed + i * 7) & 0xff;
  return b;
}
