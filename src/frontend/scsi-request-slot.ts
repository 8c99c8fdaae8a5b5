// One preallocated virtio-scsi request: its header, response and data buffers in guest memory,
// the descriptor lists that describe them, and the decoded result. Reused for every request.
import type { GuestMemoryArena } from './guest-memory-arena.ts';
import { BufferList } from './driver-queue.ts';
import { CmdResp, putLun } from './virtio-scsi-wire.ts';

export interface ScsiAddress {
  target: number;
  lun: number;
}

/** What the promise API returns for one command (copies: safe to keep after the slot is reused). */
export interface ScsiCommandResult {
  /** virtio-scsi response code (VIRTIO_SCSI_S_*). */
  response: number;
  /** SCSI status byte (SAM_STAT_*). */
  status: number;
  statusQualifier: number;
  senseLen: number;
  residual: number;
  /** Sense bytes, min(senseLen, sense_size) of them. */
  sense: Uint8Array;
  /** From the sense data; -1 when there is none. */
  senseKey: number;
  asc: number;
  ascq: number;
  /** Data-in bytes transferred: dataInLen - residual (residual clamped to dataInLen). */
  data: Uint8Array;
  /** Bytes the device reported writing (used.len): response plus data-in. */
  usedLen: number;
}

/** Layout of a slot's guest buffers (GPA "B" parts are used only when a split is configured). */
export interface SlotLayout {
  headerGpaA: number;
  headerGpaB: number;
  respGpaA: number;
  respGpaB: number;
  dataGpa: number;
}

export class ScsiRequestSlot {
  /** Token on the ring: index into the driver's slot table. */
  readonly index: number;
  /** Which request queue (0 = virtqueue 2) this slot belongs to. */
  readonly queueIndex: number;
  readonly layout: SlotLayout;
  /** The data buffer in guest memory: data-out at [0, dataOutLen), data-in at [dataInOffset, +dataInLen). */
  readonly data: Uint8Array;
  readonly maxDataBytes: number;
  /** CDB staging (cdb_size bytes); cdbLen of them are sent, the rest zero. */
  readonly cdb: Uint8Array;
  cdbLen = 0;
  /** The request's lun[8]; setAddress() fills it, hostile tests may write anything. */
  readonly lunBytes = new Uint8Array(8);
  dataOutLen = 0;
  dataInLen = 0;
  taskAttr = 0;
  prio = 0;
  crn = 0;
  /** Request id written into the header (assigned by submit()). */
  id = 0;

  /** After completion: decoded response, used.len and the sense bytes. */
  readonly resp = new CmdResp();
  usedLen = 0;
  readonly sense: Uint8Array;

  /** Owned by the device (submitted, not yet reaped). */
  inFlight = false;
  /** Handed out by acquire() and not yet released. */
  acquired = false;

  // Promise API bookkeeping (control path only).
  resolve: ((r: ScsiCommandResult) => void) | null = null;
  reject: ((e: Error) => void) | null = null;
  timer: ReturnType<typeof setTimeout> | null = null;
  /** The waiter timed out; the late completion only frees the slot. */
  abandoned = false;

  // Driver internals, preallocated.
  readonly out: BufferList;
  readonly in: BufferList;
  readonly headerStage: Uint8Array;
  readonly respStage: Uint8Array;

  constructor(
    index: number, queueIndex: number, arena: GuestMemoryArena, layout: SlotLayout,
    maxDataBytes: number, cdbSize: number, senseSize: number, headerSize: number, respSize: number, maxDescriptors: number,
  ) {
    this.index = index;
    this.queueIndex = queueIndex;
    this.layout = layout;
    this.maxDataBytes = maxDataBytes;
    this.data = arena.bytesAt(layout.dataGpa, maxDataBytes);
    this.cdb = new Uint8Array(cdbSize);
    this.sense = new Uint8Array(senseSize);
    this.headerStage = new Uint8Array(headerSize);
    this.respStage = new Uint8Array(respSize);
    this.out = new BufferList(maxDescriptors);
    this.in = new BufferList(maxDescriptors);
  }

  setAddress(target: number, lun: number): this {
    putLun(this.lunBytes, 0, target, lun);
    return this;
  }

  /** Where data-in lands in `data`: after the data-out bytes, 8-byte aligned. */
  get dataInOffset(): number {
    return (this.dataOutLen + 7) & ~7;
  }
}
