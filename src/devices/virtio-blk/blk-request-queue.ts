// A virtio-blk request queue: header -> bdev operations -> status byte, with a preallocated pool.
import { DescriptorChain } from '../../virtio/descriptor-chain.ts';
import type { Virtqueue } from '../../virtio/virtqueue.ts';
import type { BdevChannel, BdevIoWaiter } from '../../bdev/bdev.ts';
import type { QueueProcessor } from '../queue-processor.ts';
import { RequestPool } from '../request-pool.ts';
import type { BlkBackend } from './blk-backend.ts';
import {
  BLK_MAX_DISCARD_SECTORS,
  BLK_MAX_DISCARD_SEG,
  VIRTIO_BLK_DWZ_SEG_SIZE,
  VIRTIO_BLK_ID_BYTES,
  VIRTIO_BLK_OUTHDR_SIZE,
  VIRTIO_BLK_SECTOR_SIZE,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_BLK_T_WRITE_ZEROES,
  VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP,
} from './virtio-blk-constants.ts';

const MAX_SEGMENTS = 1024;
const TWO_32 = 4294967296;

class BlkRequest implements BdevIoWaiter {
  readonly chain = new DescriptorChain(MAX_SEGMENTS);
  readonly header = new Uint8Array(VIRTIO_BLK_OUTHDR_SIZE);
  readonly headerView = new DataView(this.header.buffer);
  readonly segs = new Uint8Array(BLK_MAX_DISCARD_SEG * VIRTIO_BLK_DWZ_SEG_SIZE);
  readonly segView = new DataView(this.segs.buffer);
  readonly statusByte = new Uint8Array(1);
  readonly queue: BlkRequestQueue;
  /** Bdev operations not completed yet (+1 while still being issued). */
  pending = 0;
  status = VIRTIO_BLK_S_OK;
  /** Bytes written into the device-writable buffers before the status byte. */
  written = 0;
  constructor(queue: BlkRequestQueue) {
    this.queue = queue;
  }
  bdevIoDone(status: number): void {
    if (status !== 0) this.status = VIRTIO_BLK_S_IOERR;
    if (--this.pending === 0) this.queue.complete(this);
  }
}

export class BlkRequestQueue implements QueueProcessor {
  readonly index: number;
  private readonly backend: BlkBackend;
  private readonly markDirty: (index: number) => void;
  private vq: Virtqueue | null = null;
  private readonly requests = new RequestPool<BlkRequest>(() => new BlkRequest(this));

  constructor(index: number, backend: BlkBackend, markDirty: (index: number) => void) {
    this.index = index;
    this.backend = backend;
    this.markDirty = markDirty;
  }

  attach(vq: Virtqueue): void {
    this.vq = vq;
    this.requests.grow(vq.size);
  }

  detach(): void {
    this.vq = null;
  }

  wantsAvail(): boolean {
    return true;
  }

  inflight(): number {
    return this.requests.active;
  }

  process(): number {
    const vq = this.vq;
    if (!vq) return 0;
    let n = 0;
    let req: BlkRequest | null;
    while ((req = this.requests.take(vq)) !== null) {
      n++;
      req.status = VIRTIO_BLK_S_OK;
      req.written = 0;
      req.pending = 1;
      this.start(req);
      req.bdevIoDone(0); // drop the issuing reference: completes now unless bdev I/O is pending
    }
    return n;
  }

  private start(req: BlkRequest): void {
    const out = req.chain.out;
    const inn = req.chain.in;
    if (out.length < VIRTIO_BLK_OUTHDR_SIZE || inn.length < 1) {
      req.status = VIRTIO_BLK_S_IOERR;
      return;
    }
    out.copyOut(0, req.header, 0, VIRTIO_BLK_OUTHDR_SIZE);
    const hv = req.headerView;
    const type = hv.getUint32(0, true);
    const sectorHi = hv.getUint32(12, true);
    const sector = sectorHi >= 0x200000 ? -1 : hv.getUint32(8, true) + sectorHi * TWO_32;
    const ch = this.backend.channel;
    switch (type) {
      case VIRTIO_BLK_T_IN:
        return this.readWrite(req, ch, sector, inn.length - 1, false);
      case VIRTIO_BLK_T_OUT:
        if (this.backend.readOnly) {
          req.status = VIRTIO_BLK_S_IOERR;
          return;
        }
        return this.readWrite(req, ch, sector, out.length - VIRTIO_BLK_OUTHDR_SIZE, true);
      case VIRTIO_BLK_T_FLUSH:
        if (!ch) return this.fail(req);
        req.pending++;
        ch.flush(0, ch.numBlocks, req);
        return;
      case VIRTIO_BLK_T_GET_ID: {
        const n = Math.min(VIRTIO_BLK_ID_BYTES, inn.length - 1);
        req.written = inn.copyIn(0, this.backend.serial, 0, n);
        return;
      }
      case VIRTIO_BLK_T_DISCARD:
        if (!this.backend.discard) return this.unsupported(req);
        return this.discardOrZeroes(req, ch, false);
      case VIRTIO_BLK_T_WRITE_ZEROES:
        return this.discardOrZeroes(req, ch, true);
      default:
        return this.unsupported(req);
    }
  }

  private fail(req: BlkRequest): void {
    req.status = VIRTIO_BLK_S_IOERR;
  }

  private unsupported(req: BlkRequest): void {
    req.status = VIRTIO_BLK_S_UNSUPP;
  }

  /** Converts a 512-byte sector range to blocks; -1 when misaligned or out of range. */
  private toBlocks(ch: BdevChannel, sector: number, bytes: number): number {
    const bs = ch.blockSize;
    if (sector < 0) return -1;
    const offset = sector * VIRTIO_BLK_SECTOR_SIZE;
    if (offset % bs !== 0 || bytes % bs !== 0) return -1;
    const first = offset / bs;
    if (first + bytes / bs > ch.numBlocks) return -1;
    return first;
  }

  private readWrite(req: BlkRequest, ch: BdevChannel | null, sector: number, bytes: number, write: boolean): void {
    if (!ch) return this.fail(req);
    const first = this.toBlocks(ch, sector, bytes);
    if (first < 0) return this.fail(req);
    if (bytes === 0) return;
    const blocks = bytes / ch.blockSize;
    req.pending++;
    if (write) {
      ch.write(first, blocks, req.chain.out, VIRTIO_BLK_OUTHDR_SIZE, req);
    } else {
      req.written = bytes;
      ch.read(first, blocks, req.chain.in, 0, req);
    }
  }

  private discardOrZeroes(req: BlkRequest, ch: BdevChannel | null, zeroes: boolean): void {
    if (!ch) return this.fail(req);
    if (this.backend.readOnly) return this.fail(req);
    const bytes = req.chain.out.length - VIRTIO_BLK_OUTHDR_SIZE;
    const count = bytes / VIRTIO_BLK_DWZ_SEG_SIZE;
    if (bytes <= 0 || !Number.isInteger(count) || count > BLK_MAX_DISCARD_SEG) return this.unsupported(req);
    req.chain.out.copyOut(VIRTIO_BLK_OUTHDR_SIZE, req.segs, 0, bytes);
    const v = req.segView;
    // Validate every segment before touching the device: a bad one fails the whole request.
    for (let i = 0; i < count; i++) {
      const o = i * VIRTIO_BLK_DWZ_SEG_SIZE;
      const hi = v.getUint32(o + 4, true);
      const sector = hi >= 0x200000 ? -1 : v.getUint32(o, true) + hi * TWO_32;
      const num = v.getUint32(o + 8, true);
      const flags = v.getUint32(o + 12, true);
      if ((zeroes ? flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : flags) !== 0) return this.unsupported(req);
      if (num > BLK_MAX_DISCARD_SECTORS || this.toBlocks(ch, sector, num * VIRTIO_BLK_SECTOR_SIZE) < 0) return this.fail(req);
    }
    const bs = ch.blockSize;
    for (let i = 0; i < count; i++) {
      const o = i * VIRTIO_BLK_DWZ_SEG_SIZE;
      const sector = v.getUint32(o, true) + v.getUint32(o + 4, true) * TWO_32;
      const blocks = (v.getUint32(o + 8, true) * VIRTIO_BLK_SECTOR_SIZE) / bs;
      if (blocks === 0) continue;
      const first = (sector * VIRTIO_BLK_SECTOR_SIZE) / bs;
      const unmap = !zeroes || ((v.getUint32(o + 12, true) & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) !== 0 && this.backend.unmapReadsZero);
      req.pending++;
      if (unmap) ch.unmap(first, blocks, req);
      else ch.writeZeroes(first, blocks, req);
    }
  }

  complete(req: BlkRequest): void {
    const inn = req.chain.in;
    let used = 0;
    if (inn.length >= 1) {
      req.statusByte[0] = req.status;
      inn.copyIn(inn.length - 1, req.statusByte, 0, 1);
      used = (req.status === VIRTIO_BLK_S_OK ? req.written : 0) + 1;
    }
    const vq = this.vq;
    if (vq) {
      vq.pushUsed(req.chain, used);
      this.markDirty(this.index);
    }
    this.requests.give(req);
  }
}
