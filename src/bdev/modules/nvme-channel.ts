// Per-thread I/O handle of an NVMe/TCP namespace bdev: one I/O queue (its own TCP connection and
// queue ID) of the controller, connected at the first I/O with ICReq and Fabrics Connect run
// non-blocking from poll(). Commands are written into one native send buffer as they arrive and
// the buffer goes out in one sendmsg per poll(); PDUs come in by one recvmsg per poll() per
// 256 KiB and are parsed in place, read data copied straight into the request's buffers. Writes
// up to the controller's in-capsule size travel in the command capsule, longer ones answer R2Ts
// with H2CData PDUs. When the queue breaks, or the controller (main thread, nvme-controller.ts)
// resets, every command without a completion is kept and resent on the next queue; past
// fast_io_fail_timeout they fail with EIO. Nothing is allocated per request.
import { BDEV_EINVAL, BDEV_EIO, BDEV_ENOMEM, BDEV_ENOTSUP, BDEV_OK, type BdevChannel, type BdevIoWaiter } from '../bdev.ts';
import { BdevError } from '../bdev-error.ts';
import { blocksInRange } from '../bdev-geometry.ts';
import { crc32c } from '../../blob/crc32c.ts';
import type { SgList } from '../../iovec/sg-list.ts';
import { componentLogger } from '../../log/logger.ts';
import { closeFd } from '../../sys/fd.ts';
import { errnoName, SysError } from '../../sys/errno.ts';
import { MonotonicClock } from '../../sys/monotonic-clock.ts';
import { connectStatus, describeTarget, NativeBuffer, SocketStream, startConnect } from '../../sys/stream-socket.ts';
import { CONNECT_DATA_SIZE, encodeConnectData } from './nvme-connect.ts';
import { encodeIoCommand, encodeIoQueueConnect } from './nvme-io-commands.ts';
import {
  CTL_CHANNELS,
  CTL_CNTLID,
  CTL_FAIL_FAST,
  CTL_FAILED_IOS,
  CTL_GEN,
  CTL_IO_ERRORS,
  CTL_LAST_ERRNO,
  CTL_LAST_STATUS,
  CTL_QUEUE_LOSSES,
  CTL_QUEUES,
  CTL_RESENT,
  CTL_RESET_REQ,
  CTL_STATE,
  CTRL_STATE_DELETING,
  CTRL_STATE_FAILED,
  releaseQid,
  takeQid,
  type NvmeChannelSpec,
} from './nvme-shared.ts';
import {
  CQE_CID,
  CQE_STATUS,
  DSM_RANGE_SIZE,
  nvmeStatusName,
  nvmeStatusRetryable,
  nvmeStatusToBdev,
  ONCS_DSM,
  ONCS_WRITE_ZEROES,
} from './nvme-spec.ts';
import {
  CAPSULE_CMD_HLEN,
  dataOffset,
  DATA_HLEN,
  DIGEST_SIZE,
  encodeH2cDataHeader,
  encodeH2cTermReq,
  encodeIcReq,
  fesName,
  headerDigest,
  FES_PDU_SEQUENCE_ERROR,
  NvmeTcpPduParser,
  TERM_HLEN,
  type IcRespInfo,
  type NvmeTcpPduHandler,
} from './nvme-tcp-pdu.ts';
import { NvmeSlot, OP_FLUSH, OP_READ, OP_UNMAP, OP_WRITE, OP_WRITE_ZEROES, SLOT_FREE, SLOT_QUEUED, SLOT_SENT } from './nvme-slot.ts';

/** Requests a channel holds at once (on the wire, or waiting for a queue entry or a connection). */
export const NVME_SLOTS = 1024;
const MAX_PART = 1024 * 1024;
const RECV_CAPACITY = 256 * 1024;
const RECV_ROUNDS = 8;
/** Write Zeroes moves at most 65536 blocks (NLB is 16 bits, 0-based). */
const WZ_MAX_BLOCKS = 65536;
const DSM_MAX_BLOCKS = 0xffffffff;
/** The Connect command's CID: outside the slots' range. */
const CONNECT_CID = 0xffff;
const RETRIES = 3;
const EPROTO = 71;
const ETIMEDOUT = 110;
const ECONNRESET = 104;
const ECONNREFUSED = 111;
/** While connected and idle, the socket is read every this many polls (a controller gone away). */
const IDLE_CHECK_POLLS = 65536;

const ST_IDLE = 0;
const ST_WAIT_CTRLR = 1;
const ST_CONNECTING = 2;
const ST_ICREQ = 3;
const ST_FCONNECT = 4;
const ST_READY = 5;
const ST_CLOSED = 6;
const ST_NO_QID = 7;

const log = componentLogger('bdev_nvme');

export class NvmeChannel implements BdevChannel, NvmeTcpPduHandler {
  readonly name: string;
  readonly blockSize: number;
  numBlocks: number;
  readonly #spec: NvmeChannelSpec;
  readonly #where: string;
  readonly #ctl: Int32Array;
  readonly #slots: NvmeSlot[] = [];
  readonly #free = new Int32Array(NVME_SLOTS);
  #freeTop = 0;
  readonly #queue = new Int32Array(NVME_SLOTS);
  #qHead = 0;
  #qCount = 0;
  readonly #r2tQueue = new Int32Array(NVME_SLOTS);
  #rHead = 0;
  #rCount = 0;
  #busy = 0;
  /** Commands on the wire (at most queueSize - 1). */
  #wire = 0;
  readonly #maxWire: number;
  #completed = 0;
  readonly #send: NativeBuffer;
  readonly #sendCapacity: number;
  readonly #sendDv: DataView;
  #sendHead = 0;
  #sendTail = 0;
  readonly #recv = new NativeBuffer(RECV_CAPACITY);
  readonly #parser: NvmeTcpPduParser;
  readonly #connectData: Uint8Array = new Uint8Array(CONNECT_DATA_SIZE);
  #state = ST_IDLE;
  #fd = -1;
  #stream: SocketStream | null = null;
  #qid = 0;
  /** Controller generation this queue connected under; a reset is seen as a change. */
  #connGen = -1;
  /** Generation whose controller this channel found broken: it waits for a newer one. */
  #badGen = -1;
  #hdgst = false;
  #ddgst = false;
  #cpda = 0;
  #maxH2c = 0;
  readonly #dataPart: number;
  /** The current C2HData PDU's slot and next offset. */
  #rx: NvmeSlot | null = null;
  #rxOffset = 0;
  #rxSuccess = false;
  readonly #clock = new MonotonicClock();
  #attemptDeadline = 0;
  #lostSince = 0;
  #failFastSeen = false;
  #idleToCheck = IDLE_CHECK_POLLS;
  #outageLogged = false;

  constructor(spec: NvmeChannelSpec) {
    const { blockSize, numBlocks } = spec;
    if (!Number.isInteger(blockSize) || blockSize < 512 || (blockSize & (blockSize - 1)) !== 0 || !Number.isSafeInteger(numBlocks) || numBlocks <= 0) {
      throw new BdevError('BDEV_INVALID_SPEC', `nvme channel '${String(spec.name)}': bad geometry ${numBlocks} x ${blockSize}`);
    }
    if (!(spec.control instanceof SharedArrayBuffer) || typeof spec.target !== 'object' || !(spec.hostid instanceof Uint8Array) || !Number.isInteger(spec.nsid)) {
      throw new BdevError('BDEV_INVALID_SPEC', `nvme channel '${String(spec.name)}': spec lacks control words, target, host id or nsid`);
    }
    this.name = spec.name;
    this.blockSize = blockSize;
    this.numBlocks = numBlocks;
    this.#spec = spec;
    this.#where = describeTarget(spec.target);
    this.#ctl = new Int32Array(spec.control);
    this.#maxWire = Math.max(1, Math.min(NVME_SLOTS, spec.queueSize - 1));
    const maxT = spec.maxTransfer > 0 ? Math.min(spec.maxTransfer, MAX_PART) : MAX_PART;
    this.#dataPart = Math.max(blockSize, Math.floor(maxT / blockSize) * blockSize);
    this.#sendCapacity = 2 * this.#dataPart + 65536;
    this.#send = new NativeBuffer(this.#sendCapacity);
    this.#sendDv = new DataView(this.#send.bytes.buffer, this.#send.bytes.byteOffset, this.#send.length);
    for (let i = 0; i < NVME_SLOTS; i++) {
      this.#slots.push(new NvmeSlot(i));
      this.#free[i] = NVME_SLOTS - 1 - i;
    }
    this.#freeTop = NVME_SLOTS;
    this.#parser = new NvmeTcpPduParser(this);
    Atomics.add(this.#ctl, CTL_CHANNELS, 1);
  }

  // --- submission -------------------------------------------------------------------------

  read(offsetBlocks: number, numBlocks: number, sg: SgList, sgOffset: number, waiter: BdevIoWaiter): void {
    if (!Number.isInteger(sgOffset) || sgOffset < 0 || sgOffset + numBlocks * this.blockSize > sg.length) return waiter.bdevIoDone(BDEV_EINVAL);
    this.#submit(OP_READ, offsetBlocks, numBlocks, sg, sgOffset, waiter);
  }

  write(offsetBlocks: number, numBlocks: number, sg: SgList, sgOffset: number, waiter: BdevIoWaiter): void {
    if (!Number.isInteger(sgOffset) || sgOffset < 0 || sgOffset + numBlocks * this.blockSize > sg.length) return waiter.bdevIoDone(BDEV_EINVAL);
    this.#submit(OP_WRITE, offsetBlocks, numBlocks, sg, sgOffset, waiter);
  }

  flush(_offsetBlocks: number, _numBlocks: number, waiter: BdevIoWaiter): void {
    // Without a volatile write cache a completion already means the data is stable.
    if (!this.#spec.volatileWriteCache && this.#state !== ST_CLOSED) return waiter.bdevIoDone(BDEV_OK);
    this.#submit(OP_FLUSH, 0, 0, null, 0, waiter);
  }

  unmap(offsetBlocks: number, numBlocks: number, waiter: BdevIoWaiter): void {
    if ((this.#spec.oncs & ONCS_DSM) === 0 || this.#spec.inCapsule < DSM_RANGE_SIZE) return waiter.bdevIoDone(BDEV_ENOTSUP);
    this.#submit(OP_UNMAP, offsetBlocks, numBlocks, null, 0, waiter);
  }

  writeZeroes(offsetBlocks: number, numBlocks: number, waiter: BdevIoWaiter): void {
    if ((this.#spec.oncs & ONCS_WRITE_ZEROES) === 0) return waiter.bdevIoDone(BDEV_ENOTSUP);
    this.#submit(OP_WRITE_ZEROES, offsetBlocks, numBlocks, null, 0, waiter);
  }

  #submit(op: number, lba: number, blocks: number, sg: SgList | null, sgOffset: number, waiter: BdevIoWaiter): void {
    if (this.#state === ST_CLOSED || this.#state === ST_NO_QID) return waiter.bdevIoDone(BDEV_EIO);
    const flush = op === OP_FLUSH;
    if (!flush && !blocksInRange(lba, blocks, this.numBlocks)) return waiter.bdevIoDone(BDEV_EINVAL);
    if (!flush && blocks === 0) return waiter.bdevIoDone(BDEV_OK);
    if (this.#state !== ST_READY && this.#failingFast()) {
      Atomics.add(this.#ctl, CTL_FAILED_IOS, 1);
      return waiter.bdevIoDone(BDEV_EIO);
    }
    if (this.#freeTop === 0) return waiter.bdevIoDone(BDEV_ENOMEM);
    const s = this.#slots[this.#free[--this.#freeTop]];
    s.op = op;
    s.waiter = waiter;
    s.sg = sg;
    s.sgOffset = sgOffset;
    s.lba = lba;
    s.blocks = blocks;
    s.partLba = 0;
    s.partBlocks = this.#partBlocks(s);
    s.retries = 0;
    this.#busy++;
    this.#enqueue(s);
    if (this.#state === ST_IDLE) this.#connect();
  }

  #partBlocks(s: NvmeSlot): number {
    const left = s.blocks - s.partLba;
    const max = s.op === OP_READ || s.op === OP_WRITE ? this.#dataPart / this.blockSize : s.op === OP_WRITE_ZEROES ? WZ_MAX_BLOCKS : DSM_MAX_BLOCKS;
    return left < max ? left : max;
  }

  #enqueue(s: NvmeSlot): void {
    s.state = SLOT_QUEUED;
    this.#queue[(this.#qHead + this.#qCount) % NVME_SLOTS] = s.index;
    this.#qCount++;
  }

  /** Controller failed for good, or reconnecting past fast_io_fail_timeout_sec. */
  #failingFast(): boolean {
    const st = Atomics.load(this.#ctl, CTL_STATE);
    return st === CTRL_STATE_FAILED || st === CTRL_STATE_DELETING || Atomics.load(this.#ctl, CTL_FAIL_FAST) !== 0;
  }

  // --- the data path ----------------------------------------------------------------------

  poll(): number {
    this.#completed = 0;
    if (this.#state === ST_READY) {
      if (Atomics.load(this.#ctl, CTL_GEN) !== this.#connGen) {
        this.#lost(0, 'the controller is resetting', false);
        return this.#completed;
      }
      if (this.#busy === 0) {
        if (--this.#idleToCheck <= 0) this.#checkIdle();
        return 0;
      }
      this.#encode();
      if (this.#sendTail > this.#sendHead) this.#transmit();
      if (this.#state === ST_READY && this.#wire > 0) this.#receive();
    } else if (this.#state !== ST_CLOSED && this.#state !== ST_IDLE && this.#state !== ST_NO_QID) {
      this.#advanceConnection();
    }
    return this.#completed;
  }

  #room(): number {
    return this.#sendCapacity - this.#sendTail;
  }

  /** Writes H2CData for outstanding R2Ts, then new commands, into the send buffer as room allows. */
  #encode(): void {
    const hd = this.#hdgst ? DIGEST_SIZE : 0;
    const dd = this.#ddgst ? DIGEST_SIZE : 0;
    const dataAt = dataOffset(DATA_HLEN + hd, this.#cpda);
    while (this.#rCount > 0) {
      const s = this.#slots[this.#r2tQueue[this.#rHead]];
      const room = this.#room() - dataAt - dd;
      if (room < this.blockSize && room < s.r2tLeft) return;
      let len = s.r2tLeft < this.#maxH2c ? s.r2tLeft : this.#maxH2c;
      if (len > room) len = room;
      const at = this.#sendTail;
      const last = len === s.r2tLeft;
      encodeH2cDataHeader(this.#sendDv, at, s.index, s.ttag, s.r2tOffset, len, last, this.#hdgst, this.#ddgst, dataAt);
      if (hd > 0) this.#sendDv.setUint32(at + DATA_HLEN, headerDigest(this.#send.bytes, at, DATA_HLEN), true);
      const d = at + dataAt;
      (s.sg as SgList).copyOut(s.sgOffset + s.partLba * this.blockSize + s.r2tOffset, this.#send.bytes, d, len);
      if (dd > 0) this.#sendDv.setUint32(d + len, crc32c(this.#send.bytes, d, d + len), true);
      this.#sendTail = d + len + dd;
      s.r2tOffset += len;
      s.r2tLeft -= len;
      if (s.r2tLeft === 0) {
        this.#rHead = (this.#rHead + 1) % NVME_SLOTS;
        this.#rCount--;
      }
    }
    const inCap = this.#spec.inCapsule;
    while (this.#qCount > 0 && this.#wire < this.#maxWire) {
      const s = this.#slots[this.#queue[this.#qHead]];
      const bytes = s.op === OP_READ || s.op === OP_WRITE ? s.partBlocks * this.blockSize : 0;
      const capsuleData = s.op === OP_UNMAP ? DSM_RANGE_SIZE : s.op === OP_WRITE && bytes <= inCap ? bytes : 0;
      const cdAt = capsuleData > 0 ? dataOffset(CAPSULE_CMD_HLEN + hd, this.#cpda) : CAPSULE_CMD_HLEN + hd;
      if (cdAt + capsuleData + dd > this.#room()) return;
      this.#qHead = (this.#qHead + 1) % NVME_SLOTS;
      this.#qCount--;
      s.state = SLOT_SENT;
      s.dataBytes = bytes;
      s.received = 0;
      s.r2tLeft = 0;
      this.#wire++;
      encodeIoCommand(this.#sendDv, this.#send.bytes, this.#sendTail, s, this.#spec.nsid, this.blockSize, capsuleData, cdAt, this.#hdgst, this.#ddgst);
      this.#sendTail += cdAt + capsuleData + (capsuleData > 0 ? dd : 0);
    }
  }

  #transmit(): void {
    const n = (this.#stream as SocketStream).send(this.#send, this.#sendHead, this.#sendTail - this.#sendHead);
    if (n < 0) return this.#lost(-n, 'send failed', true);
    this.#sendHead += n;
    if (this.#sendHead === this.#sendTail) this.#sendHead = this.#sendTail = 0;
  }

  #receive(): void {
    const stream = this.#stream as SocketStream;
    for (let round = 0; round < RECV_ROUNDS; round++) {
      const n = stream.recv(this.#recv, 0, RECV_CAPACITY);
      if (n === -11) return;
      if (n === 0) return this.#lost(ECONNRESET, 'the controller closed the connection', true);
      if (n < 0) return this.#lost(-n, 'receive failed', true);
      if (!this.#parser.feed(this.#recv.bytes, 0, n)) return this.#protocolError(String(this.#parser.error));
      if (this.#state !== ST_READY && this.#state !== ST_FCONNECT) return;
      if (n < RECV_CAPACITY) return;
    }
  }

  #protocolError(why: string): void {
    if (this.#stream !== null && this.#sendHead === this.#sendTail) {
      // Tell the controller why, between PDUs (best effort: the connection ends either way).
      encodeH2cTermReq(this.#sendDv, 0, FES_PDU_SEQUENCE_ERROR);
      this.#stream.send(this.#send, 0, TERM_HLEN);
    }
    this.#lost(EPROTO, `protocol error: ${why}`, true);
  }

  // --- NvmeTcpPduHandler ------------------------------------------------------------------

  icResp(info: IcRespInfo): void {
    if (this.#state !== ST_ICREQ) return this.#parserError('ICResp outside connection setup');
    if (info.pfv !== 0 || (info.headerDigest && !this.#spec.headerDigest) || (info.dataDigest && !this.#spec.dataDigest) || info.maxH2cData < 4096 || info.cpda > 31) {
      return this.#parserError(`unusable ICResp (pfv ${info.pfv}, cpda ${info.cpda}, maxh2cdata ${info.maxH2cData})`);
    }
    this.#hdgst = info.headerDigest;
    this.#ddgst = info.dataDigest;
    this.#cpda = info.cpda;
    this.#maxH2c = Math.floor(info.maxH2cData / this.blockSize) * this.blockSize || info.maxH2cData;
    this.#parser.headerDigest = info.headerDigest;
    this.#parser.dataDigest = info.dataDigest;
    this.#sendFabricsConnect();
  }

  capsuleResp(b: Uint8Array, at: number): void {
    const cid = b[at + CQE_CID] | (b[at + CQE_CID + 1] << 8);
    const status = (b[at + CQE_STATUS] | (b[at + CQE_STATUS + 1] << 8)) & 0xfffe;
    if (this.#state === ST_FCONNECT) {
      if (cid !== CONNECT_CID) return this.#parserError(`completion for command ${cid} before the queue was connected`);
      if (status !== 0) return this.#connectRefused(status);
      return this.#ready();
    }
    if (cid >= NVME_SLOTS || this.#slots[cid].state !== SLOT_SENT) return this.#parserError(`completion for command ${cid}, which is not in flight`);
    const s = this.#slots[cid];
    if (status === 0 && s.op === OP_READ && s.received !== s.dataBytes) return this.#parserError(`read ${cid} completed with ${s.received} of ${s.dataBytes} bytes`);
    this.#commandDone(s, status);
  }

  c2hStart(cid: number, offset: number, length: number, _last: boolean, success: boolean): boolean {
    if (cid >= NVME_SLOTS) return false;
    const s = this.#slots[cid];
    if (s.state !== SLOT_SENT || s.op !== OP_READ || offset + length > s.dataBytes) return false;
    this.#rx = s;
    this.#rxOffset = offset;
    this.#rxSuccess = success;
    return true;
  }

  c2hData(b: Uint8Array, at: number, len: number): void {
    const s = this.#rx as NvmeSlot;
    (s.sg as SgList).copyIn(s.sgOffset + s.partLba * this.blockSize + this.#rxOffset, b, at, len);
    this.#rxOffset += len;
    s.received += len;
  }

  c2hEnd(): void {
    const s = this.#rx as NvmeSlot;
    this.#rx = null;
    if (!this.#rxSuccess) return;
    // SUCCESS flag: no CapsuleResp follows.
    if (s.received !== s.dataBytes) return this.#parserError(`read ${s.index} ended with ${s.received} of ${s.dataBytes} bytes`);
    this.#commandDone(s, 0);
  }

  r2t(cid: number, ttag: number, offset: number, length: number): void {
    if (cid >= NVME_SLOTS) return this.#parserError(`R2T for command ${cid}`);
    const s = this.#slots[cid];
    if (s.state !== SLOT_SENT || s.op !== OP_WRITE || s.r2tLeft !== 0 || length === 0 || offset + length > s.dataBytes) {
      return this.#parserError(`R2T for command ${cid} at ${offset}+${length}, outside a write waiting for data`);
    }
    s.ttag = ttag;
    s.r2tOffset = offset;
    s.r2tLeft = length;
    this.#r2tQueue[(this.#rHead + this.#rCount) % NVME_SLOTS] = s.index;
    this.#rCount++;
  }

  termReq(fes: number, fei: number): void {
    this.#parserError(`the controller ended the connection: ${fesName(fes)} (field ${fei})`);
  }

  /** From inside the parser: stop it (feed returns false), and #receive drops the connection. */
  #parserError(why: string): void {
    this.#parser.error = why;
  }

  #commandDone(s: NvmeSlot, status: number): void {
    this.#wire--;
    if (status !== 0) {
      Atomics.add(this.#ctl, CTL_IO_ERRORS, 1);
      Atomics.store(this.#ctl, CTL_LAST_STATUS, status);
      if (nvmeStatusRetryable(status) && s.retries < RETRIES) {
        s.retries++;
        return this.#enqueue(s);
      }
      log.warn({ bdev: this.name, lba: s.lba + s.partLba, blocks: s.partBlocks, op: s.op }, `command failed: ${nvmeStatusName(status)}`);
      return this.#finish(s, nvmeStatusToBdev(status));
    }
    s.partLba += s.partBlocks;
    if (s.partLba < s.blocks) {
      s.partBlocks = this.#partBlocks(s);
      this.#enqueue(s);
    } else this.#finish(s, BDEV_OK);
  }

  #finish(s: NvmeSlot, status: number): void {
    const w = s.waiter as BdevIoWaiter;
    s.waiter = null;
    s.sg = null;
    s.state = SLOT_FREE;
    this.#free[this.#freeTop++] = s.index;
    this.#busy--;
    this.#completed++;
    w.bdevIoDone(status);
  }

  #checkIdle(): void {
    this.#idleToCheck = IDLE_CHECK_POLLS;
    const n = (this.#stream as SocketStream).recv(this.#recv, 0, 64);
    if (n === -11) return;
    if (n > 0) this.#lost(EPROTO, `the controller sent ${n} bytes with no command in flight`, true);
    else this.#lost(n === 0 ? ECONNRESET : -n, n === 0 ? 'the controller closed the idle connection' : 'receive failed', true);
  }

  // --- the connection ---------------------------------------------------------------------

  #nowMs(): number {
    this.#clock.read();
    return this.#clock.sec * 1000 + Math.floor(this.#clock.nsec / 1e6);
  }

  /** Starts connecting once the controller is live (else waits for it in ST_WAIT_CTRLR). */
  #connect(): void {
    const now = this.#nowMs();
    if (this.#lostSince === 0) this.#lostSince = now;
    const gen = Atomics.load(this.#ctl, CTL_GEN);
    if ((gen & 1) !== 0 || gen === this.#badGen) {
      this.#state = ST_WAIT_CTRLR;
      return;
    }
    if (this.#qid === 0) {
      this.#qid = takeQid(this.#ctl);
      if (this.#qid === 0) {
        log.error({ bdev: this.name, server: this.#where }, 'no I/O queue left on the controller (num_io_queues, or the target\'s limit): this reactor\'s I/O fails with EIO');
        this.#state = ST_NO_QID;
        this.#failAll(BDEV_EIO);
        return;
      }
    }
    this.#connGen = gen;
    this.#attemptDeadline = now + this.#spec.connectTimeoutMs;
    try {
      const { fd, pending } = startConnect(this.#spec.target);
      this.#fd = fd;
      this.#stream = new SocketStream(fd);
      this.#state = ST_CONNECTING;
      if (!pending) this.#sendIcReq();
    } catch (e) {
      this.#attemptFailed(e instanceof SysError ? e.errno : ECONNREFUSED, e instanceof Error ? e.message : String(e));
    }
  }

  #sendIcReq(): void {
    this.#parser.reset();
    this.#sendHead = this.#sendTail = 0;
    this.#sendTail = encodeIcReq(this.#sendDv, 0, this.#spec.headerDigest, this.#spec.dataDigest);
    this.#state = ST_ICREQ;
    this.#transmitSetup();
  }

  #sendFabricsConnect(): void {
    encodeConnectData(this.#spec.hostid, Atomics.load(this.#ctl, CTL_CNTLID), this.#spec.subnqn, this.#spec.hostnqn, this.#connectData);
    this.#sendTail = encodeIoQueueConnect(this.#sendDv, this.#send.bytes, this.#sendTail, CONNECT_CID, this.#qid, this.#spec.queueSize - 1, this.#connectData, this.#hdgst, this.#ddgst, this.#cpda);
    this.#state = ST_FCONNECT;
  }

  /** Setup PDUs are small: send what the socket takes, the rest at the next poll. */
  #transmitSetup(): void {
    if (this.#sendTail === this.#sendHead) return;
    const n = (this.#stream as SocketStream).send(this.#send, this.#sendHead, this.#sendTail - this.#sendHead);
    if (n < 0) return this.#attemptFailed(-n, 'send failed while connecting');
    this.#sendHead += n;
    if (this.#sendHead === this.#sendTail) this.#sendHead = this.#sendTail = 0;
  }

  #advanceConnection(): void {
    const now = this.#nowMs();
    if (this.#state === ST_WAIT_CTRLR) {
      const st = Atomics.load(this.#ctl, CTL_STATE);
      if (st === CTRL_STATE_FAILED || st === CTRL_STATE_DELETING) {
        if (this.#busy > 0) this.#failAll(BDEV_EIO);
        return;
      }
      const gen = Atomics.load(this.#ctl, CTL_GEN);
      if ((gen & 1) === 0 && gen !== this.#badGen) this.#connect();
      else this.#checkFailFast();
      return;
    }
    if (now >= this.#attemptDeadline) {
      this.#attemptFailed(ETIMEDOUT, `queue ${this.#qid} not connected within ${this.#spec.connectTimeoutMs} ms`);
      return;
    }
    if (this.#state === ST_CONNECTING) {
      const st = connectStatus(this.#fd);
      if (st === 0) this.#sendIcReq();
      else if (st > 0) this.#attemptFailed(st, 'connect failed');
      return;
    }
    // ICReq or Connect sent: push out the rest and read the answer.
    this.#transmitSetup();
    if (this.#state !== ST_ICREQ && this.#state !== ST_FCONNECT) return;
    const stream = this.#stream as SocketStream;
    const n = stream.recv(this.#recv, 0, RECV_CAPACITY);
    if (n === -11) return;
    if (n <= 0) return this.#attemptFailed(n === 0 ? ECONNRESET : -n, 'the controller closed the connection while it was being set up');
    if (!this.#parser.feed(this.#recv.bytes, 0, n)) return this.#attemptFailed(EPROTO, String(this.#parser.error));
    if (this.#state === ST_FCONNECT) this.#transmitSetup();
  }

  #connectRefused(status: number): void {
    this.#parserError(`Fabrics Connect of I/O queue ${this.#qid} failed: ${nvmeStatusName(status)}`);
  }

  #ready(): void {
    this.#state = ST_READY;
    this.#idleToCheck = IDLE_CHECK_POLLS;
    Atomics.add(this.#ctl, CTL_QUEUES, 1);
    if (this.#outageLogged) log.info({ bdev: this.name, server: this.#where, qid: this.#qid, resend: this.#qCount }, `I/O queue connected again after ${Math.round((this.#nowMs() - this.#lostSince) / 100) / 10} s`);
    this.#outageLogged = false;
    this.#lostSince = 0;
    this.#failFastSeen = false;
  }

  /** A queue that could not be set up: the controller is asked to reset, and this channel waits for it. */
  #attemptFailed(errno: number, why: string): void {
    this.#closeSocket();
    Atomics.store(this.#ctl, CTL_LAST_ERRNO, errno);
    if (!this.#outageLogged) {
      this.#outageLogged = true;
      log.warn({ bdev: this.name, server: this.#where, qid: this.#qid, errno: errnoName(errno), waiting: this.#busy }, `cannot connect the I/O queue: ${why}; waiting for the controller to reconnect`);
    }
    this.#requestReset();
  }

  /** The queue broke (or the controller reset): commands without a completion are resent on the next queue. */
  #lost(errno: number, why: string, askReset: boolean): void {
    const wasReady = this.#state === ST_READY;
    this.#closeSocket();
    if (wasReady) Atomics.sub(this.#ctl, CTL_QUEUES, 1);
    Atomics.add(this.#ctl, CTL_QUEUE_LOSSES, 1);
    if (errno !== 0) Atomics.store(this.#ctl, CTL_LAST_ERRNO, errno);
    const resent = this.#requeueAll();
    if (this.#lostSince === 0) this.#lostSince = this.#nowMs();
    if (askReset || this.#busy > 0) {
      log.warn({ bdev: this.name, server: this.#where, qid: this.#qid, errno: errno !== 0 ? errnoName(errno) : undefined, resend: resent }, `I/O queue lost: ${why}`);
      this.#outageLogged = true;
    }
    if (askReset) this.#requestReset();
    else {
      this.#badGen = this.#connGen;
      this.#state = ST_WAIT_CTRLR;
    }
    // Nothing held: connect again at the next I/O (a sleeping reactor would not poll us anyway).
    if (this.#busy === 0) this.#state = this.#state === ST_WAIT_CTRLR ? ST_IDLE : this.#state;
  }

  #requestReset(): void {
    this.#badGen = this.#connGen >= 0 ? this.#connGen : Atomics.load(this.#ctl, CTL_GEN);
    this.#state = ST_WAIT_CTRLR;
    Atomics.add(this.#ctl, CTL_RESET_REQ, 1);
    Atomics.notify(this.#ctl, CTL_RESET_REQ);
  }

  #checkFailFast(): void {
    if (Atomics.load(this.#ctl, CTL_FAIL_FAST) === 0) return;
    if (this.#busy > 0) {
      if (!this.#failFastSeen) log.error({ bdev: this.name, server: this.#where, failed: this.#busy }, 'the controller is still away past fast_io_fail_timeout_sec: I/O fails with EIO until it is back');
      this.#failAll(BDEV_EIO);
    }
    this.#failFastSeen = true;
  }

  /** Puts every busy slot back in the queue (in slot order); returns how many were on the wire. */
  #requeueAll(): number {
    let onWire = 0;
    this.#qHead = 0;
    this.#qCount = 0;
    this.#rHead = 0;
    this.#rCount = 0;
    for (let i = 0; i < NVME_SLOTS; i++) {
      const s = this.#slots[i];
      if (s.state === SLOT_FREE) continue;
      if (s.state === SLOT_SENT) onWire++;
      s.r2tLeft = 0;
      s.partBlocks = this.#partBlocks(s);
      this.#enqueue(s);
    }
    this.#wire = 0;
    if (onWire > 0) Atomics.add(this.#ctl, CTL_RESENT, onWire);
    return onWire;
  }

  #failAll(status: number): void {
    for (let i = 0; i < NVME_SLOTS; i++) {
      const s = this.#slots[i];
      if (s.state === SLOT_FREE) continue;
      Atomics.add(this.#ctl, CTL_FAILED_IOS, 1);
      this.#finish(s, status);
    }
    this.#qHead = 0;
    this.#qCount = 0;
    this.#rHead = 0;
    this.#rCount = 0;
    this.#wire = 0;
  }

  #closeSocket(): void {
    if (this.#fd >= 0) closeFd(this.#fd);
    this.#fd = -1;
    this.#stream = null;
    this.#sendHead = this.#sendTail = 0;
    this.#rx = null;
    this.#parser.reset();
  }

  // --- the rest of BdevChannel -----------------------------------------------------------

  /** Requests held, plus one while a queue is being set up: the reactor keeps polling until it ends. */
  inflight(): number {
    return this.#busy + (this.#state >= ST_CONNECTING && this.#state <= ST_FCONNECT ? 1 : 0);
  }

  resize(numBlocks: number): void {
    if (Number.isSafeInteger(numBlocks) && numBlocks >= 0) this.numBlocks = numBlocks;
  }

  close(): void {
    if (this.#state === ST_CLOSED) return;
    if (this.#busy > 0) {
      log.error({ bdev: this.name, inflight: this.#busy }, 'closing with I/O still in flight: failing it with EIO');
      this.#failAll(BDEV_EIO);
    }
    if (this.#state === ST_READY) Atomics.sub(this.#ctl, CTL_QUEUES, 1);
    this.#closeSocket();
    releaseQid(this.#ctl, this.#qid);
    this.#qid = 0;
    this.#state = ST_CLOSED;
    this.numBlocks = 0;
    Atomics.sub(this.#ctl, CTL_CHANNELS, 1);
    this.#send.free();
    this.#recv.free();
  }
}
