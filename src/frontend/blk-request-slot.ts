// One preallocated virtio-blk request: header, data and status buffers in guest memory, the
// descriptor lists that describe them, and the result. Reused for every request.
import type { GuestMemoryArena } from './guest-memory-arena.ts';
import { BufferList } from './driver-queue.ts';
import { VIRTIO_BLK_OUTHDR_SIZE } from './virtio-blk-wire.ts';

/** What the promise API returns for one request (copies: safe to keep after the slot is reused). */
export interface BlkResult {
  /** The status byte the device wrote (VIRTIO_BLK_S_*), or the poison 0xa5 if it wrote none. */
  status: number;
  /** The data-in bytes (all dataInLen of them, whatever usedLen says). */
  data: Uint8Array;
  /** Bytes the device reported writing (used len): data-in plus the status byte. */
  usedLen: number;
}

/** Guest addresses of a slot's buffers ("B" and "merged" parts are used only by those layouts). */
export interface BlkSlotLayout {
  headerGpaA: number;
  headerGpaB: number;
  statusGpa: number;
  dataGpa: number;
  /** 16 bytes right before dataGpa, for a header sharing one descriptor with the data-out. */
  mergedHeaderGpa: number;
}

export class BlkRequestSlot {
  /** Token on the ring: index into the driver's slot table. */
  readonly index: number;
  /** Which request queue this slot belongs to. */
  readonly queueIndex: number;
  readonly layout: BlkSlotLayout;
  /** Guest data buffer: data-out at [0, dataOutLen), data-in at [dataInOffset, +dataInLen). */
  readonly data: Uint8Array;
  readonly maxDataBytes: number;
  /** VIRTIO_BLK_T_* or any u32 (hostile tests). */
  type = 0;
  /** The header's reserved field (0 unless a test lies). */
  reserved = 0;
  sector = 0;
  dataOutLen = 0;
  dataInLen = 0;

  /** After completion: the status byte and used len. */
  status = 0;
  usedLen = 0;
  /** Where submit() put the status byte (it moves with statusWithData): GPA, and region bytes + offset. */
  statusGpa = 0;
  statusMem: Uint8Array = new Uint8Array(0);
  statusOff = 0;

  inFlight = false;
  acquired = false;

  // Promise API bookkeeping (control path only).
  resolve: ((r: BlkResult) => void) | null = null;
  reject: ((e: Error) => void) | null = null;
  timer: ReturnType<typeof setTimeout> | null = null;
  abandoned = false;

  // Driver internals, preallocated.
  readonly out: BufferList;
  readonly in: BufferList;
  readonly headerStage = new Uint8Array(VIRTIO_BLK_OUTHDR_SIZE);

  constructor(index: number, queueIndex: number, arena: GuestMemoryArena, layout: BlkSlotLayout, maxDataBytes: number, maxDescriptors: number) {
    this.index = index;
    this.queueIndex = queueIndex;
    this.layout = layout;
    this.maxDataBytes = maxDataBytes;
    this.data = arena.bytesAt(layout.dataGpa, maxDataBytes);
    this.out = new BufferList(maxDescriptors);
    this.in = new BufferList(maxDescriptors);
  }

  /** Where data-in lands in `data`: after the data-out bytes, 8-byte aligned. */
  get dataInOffset(): number {
    return (this.dataOutLen + 7) & ~7;
  }
}
