// Per-thread I/O handle of an NBD bdev: its own connection to the server, opened at the first
// I/O, with the handshake run non-blocking from poll(). Requests are written into one native send
// buffer as they arrive and the buffer goes out in one sendmsg per poll() (a turn's requests in
// one syscall); replies come in by one recvmsg per poll() per 256 KiB and are parsed in place
// (nbd-reply-parser.ts). When the connection drops, every request without a reply is kept and
// resent on the next connection (NBD's reads and writes are idempotent); after
// fast_io_fail_timeout without one, they fail with EIO. Nothing is allocated per request.
import { BDEV_EINVAL, BDEV_EIO, BDEV_ENOMEM, BDEV_ENOTSUP, BDEV_EROFS, BDEV_OK, type BdevChannel, type BdevIoWaiter } from '../bdev.ts';
import { BdevError } from '../bdev-error.ts';
import { blocksInRange } from '../bdev-geometry.ts';
import type { SgList } from '../../iovec/sg-list.ts';
import { componentLogger } from '../../log/logger.ts';
import { closeFd } from '../../sys/fd.ts';
import { errnoName, SysError } from '../../sys/errno.ts';
import { MonotonicClock } from '../../sys/monotonic-clock.ts';
import { connectStatus, describeTarget, NativeBuffer, SocketStream, startConnect } from '../../sys/stream-socket.ts';
import { NbdHandshake } from './nbd-handshake.ts';
import { NbdReplyParser, type NbdReplyHandler } from './nbd-reply-parser.ts';
import {
  CTL_CHANNELS,
  CTL_CONNECTED,
  CTL_CONNECTS,
  CTL_FAILED_IOS,
  CTL_LAST_ERRNO,
  CTL_LOSSES,
  CTL_RESENT,
  type NbdChannelSpec,
} from './nbd-shared.ts';
import {
  NBD_CMD_DISC,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_TRIM,
  NBD_CMD_WRITE,
  NBD_CMD_WRITE_ZEROES,
  NBD_FLAG_CAN_MULTI_CONN,
  NBD_FLAG_READ_ONLY,
  NBD_FLAG_SEND_FLUSH,
  NBD_FLAG_SEND_TRIM,
  NBD_FLAG_SEND_WRITE_ZEROES,
  NBD_REQUEST_MAGIC,
  NBD_REQUEST_SIZE,
} from './nbd-wire.ts';
import { NbdSlot, OP_FLUSH, OP_READ, OP_TRIM, OP_WRITE, OP_WRITE_ZEROES, OP_ZERO_WRITE, SLOT_FREE, SLOT_QUEUED, SLOT_SENT } from './nbd-slot.ts';

/** Requests a channel holds at once (sent, waiting for a connection, or for room in the send buffer). */
export const NBD_SLOTS = 1024;
/** Largest read or write part; longer I/O is sent in parts of this size one after the other. */
const MAX_DATA_PART = 2 * 1024 * 1024;
const SEND_CAPACITY = 2 * MAX_DATA_PART + 65536;
const RECV_CAPACITY = 256 * 1024;
/** recvmsg calls per poll at most (each fills up to RECV_CAPACITY). */
const RECV_ROUNDS = 8;
/** While connected with requests on the wire, the clock is read every this many polls (I/O timeout). */
const TIMEOUT_CHECK_POLLS = 1024;
/** While connected and idle, the socket is read every this many polls (a server gone away). */
const IDLE_CHECK_POLLS = 65536;
const TWO_32 = 0x1_0000_0000;
const EPROTO = 71;
const ETIMEDOUT = 110;
const ECONNRESET = 104;

const ST_IDLE = 0;
const ST_CONNECTING = 1;
const ST_HANDSHAKE = 2;
const ST_READY = 3;
const ST_BACKOFF = 4;
const ST_CLOSED = 5;

const log = componentLogger('bdev_nbd');

export class NbdChannel implements BdevChannel, NbdReplyHandler {
  readonly name: string;
  readonly blockSize: number;
  numBlocks: number;
  readonly #spec: NbdChannelSpec;
  readonly #where: string;
  readonly #ctl: Int32Array;
  readonly #slots: NbdSlot[] = [];
  readonly #free = new Int32Array(NBD_SLOTS);
  #freeTop = 0;
  readonly #queue = new Int32Array(NBD_SLOTS);
  #qHead = 0;
  #qCount = 0;
  /** Slots not free. */
  #busy = 0;
  /** Slots whose current part is on the wire. */
  #wire = 0;
  #completed = 0;
  readonly #send = new NativeBuffer(SEND_CAPACITY);
  readonly #sendDv: DataView;
  #sendHead = 0;
  #sendTail = 0;
  readonly #recv = new NativeBuffer(RECV_CAPACITY);
  readonly #parser: NbdReplyParser;
  #state = ST_IDLE;
  #fd = -1;
  #stream: SocketStream | null = null;
  #handshake: NbdHandshake | null = null;
  /** Transmission flags of the current (or last) connection. */
  #flags = 0;
  #dataPart = MAX_DATA_PART;
  #noDataPart = MAX_DATA_PART;
  #shutdownSeen = false;
  #multiConnWarned = false;
  readonly #clock = new MonotonicClock();
  /** Milliseconds on the monotonic clock (slow paths only). */
  #attemptDeadline = 0;
  #retryAt = 0;
  /** When the channel last had (or first wanted) a connection and had none; 0 while connected. */
  #lostSince = 0;
  #failFast = false;
  #outageLogged = false;
  #pollsToCheck = TIMEOUT_CHECK_POLLS;
  #idleToCheck = IDLE_CHECK_POLLS;
  #progressReplies = 0;
  #progressAt = 0;

  constructor(spec: NbdChannelSpec) {
    const { blockSize, numBlocks } = spec;
    if (!Number.isInteger(blockSize) || blockSize < 512 || (blockSize & (blockSize - 1)) !== 0 || !Number.isSafeInteger(numBlocks) || numBlocks <= 0) {
      throw new BdevError('BDEV_INVALID_SPEC', `nbd channel '${String(spec.name)}': bad geometry ${numBlocks} x ${blockSize}`);
    }
    if (!(spec.control instanceof SharedArrayBuffer) || typeof spec.exportName !== 'string' || typeof spec.target !== 'object') {
      throw new BdevError('BDEV_INVALID_SPEC', `nbd channel '${String(spec.name)}': spec lacks control words, target or export name`);
    }
    this.name = spec.name;
    this.blockSize = blockSize;
    this.numBlocks = numBlocks;
    this.#spec = spec;
    this.#where = describeTarget(spec.target);
    this.#ctl = new Int32Array(spec.control);
    for (let i = 0; i < NBD_SLOTS; i++) {
      this.#slots.push(new NbdSlot(i));
      this.#free[i] = NBD_SLOTS - 1 - i;
    }
    this.#freeTop = NBD_SLOTS;
    this.#sendDv = new DataView(this.#send.bytes.buffer, this.#send.bytes.byteOffset, this.#send.length);
    this.#parser = new NbdReplyParser(this.#slots, this);
    Atomics.add(this.#ctl, CTL_CHANNELS, 1);
  }

  // --- submission -------------------------------------------------------------------------

  read(offsetBlocks: number, numBlocks: number, sg: SgList, sgOffset: number, waiter: BdevIoWaiter): void {
    this.#submitData(OP_READ, offsetBlocks, numBlocks, sg, sgOffset, waiter);
  }

  write(offsetBlocks: number, numBlocks: number, sg: SgList, sgOffset: number, waiter: BdevIoWaiter): void {
    this.#submitData(OP_WRITE, offsetBlocks, numBlocks, sg, sgOffset, waiter);
  }

  flush(offsetBlocks: number, numBlocks: number, waiter: BdevIoWaiter): void {
    if (this.#state === ST_CLOSED) return waiter.bdevIoDone(BDEV_EIO);
    // Without a volatile cache on the server a reply means the data is stable: nothing to flush.
    if (this.#state === ST_READY && (this.#flags & NBD_FLAG_SEND_FLUSH) === 0) return waiter.bdevIoDone(BDEV_OK);
    this.#submit(OP_FLUSH, offsetBlocks, numBlocks, null, 0, waiter, true);
  }

  unmap(offsetBlocks: number, numBlocks: number, waiter: BdevIoWaiter): void {
    if (this.#state === ST_READY && (this.#flags & NBD_FLAG_SEND_TRIM) === 0) return waiter.bdevIoDone(BDEV_ENOTSUP);
    this.#submit(OP_TRIM, offsetBlocks, numBlocks, null, 0, waiter, false);
  }

  writeZeroes(offsetBlocks: number, numBlocks: number, waiter: BdevIoWaiter): void {
    this.#submit(OP_WRITE_ZEROES, offsetBlocks, numBlocks, null, 0, waiter, false);
  }

  #submitData(op: number, offsetBlocks: number, numBlocks: number, sg: SgList, sgOffset: number, waiter: BdevIoWaiter): void {
    if (!Number.isInteger(sgOffset) || sgOffset < 0 || sgOffset + numBlocks * this.blockSize > sg.length) return waiter.bdevIoDone(BDEV_EINVAL);
    this.#submit(op, offsetBlocks, numBlocks, sg, sgOffset, waiter, false);
  }

  #submit(op: number, offsetBlocks: number, numBlocks: number, sg: SgList | null, sgOffset: number, waiter: BdevIoWaiter, noRange: boolean): void {
    if (this.#state === ST_CLOSED) return waiter.bdevIoDone(BDEV_EIO);
    if (!noRange && !blocksInRange(offsetBlocks, numBlocks, this.numBlocks)) return waiter.bdevIoDone(BDEV_EINVAL);
    if (op !== OP_READ && op !== OP_FLUSH && (this.#spec.readOnly || (this.#flags & NBD_FLAG_READ_ONLY) !== 0)) return waiter.bdevIoDone(BDEV_EROFS);
    if (!noRange && numBlocks === 0) return waiter.bdevIoDone(BDEV_OK);
    if (this.#failFast && this.#state === ST_BACKOFF) {
      // Nothing is held, so nothing polls the connection: an I/O is what tries again, at most
      // once per reconnect delay, and waits only while that attempt runs.
      if (this.#nowMs() >= this.#retryAt) this.#connect();
      if (this.#state === ST_BACKOFF) {
        Atomics.add(this.#ctl, CTL_FAILED_IOS, 1);
        return waiter.bdevIoDone(BDEV_EIO);
      }
    }
    if (op === OP_WRITE_ZEROES && this.#state === ST_READY && (this.#flags & NBD_FLAG_SEND_WRITE_ZEROES) === 0) op = OP_ZERO_WRITE;
    if (this.#freeTop === 0) return waiter.bdevIoDone(BDEV_ENOMEM);
    const s = this.#slots[this.#free[--this.#freeTop]];
    s.op = op;
    s.waiter = waiter;
    s.sg = sg;
    s.sgOffset = sgOffset;
    s.byteOffset = noRange ? 0 : offsetBlocks * this.blockSize;
    s.byteLength = noRange ? 0 : numBlocks * this.blockSize;
    s.partOffset = 0;
    s.partLength = this.#partLength(s);
    s.status = 0;
    this.#busy++;
    this.#enqueue(s);
    if (this.#state === ST_IDLE) this.#connect();
  }

  #partLength(s: NbdSlot): number {
    const left = s.byteLength - s.partOffset;
    const max = s.op === OP_READ || s.op === OP_WRITE || s.op === OP_ZERO_WRITE ? this.#dataPart : this.#noDataPart;
    return left < max ? left : max;
  }

  #enqueue(s: NbdSlot): void {
    s.state = SLOT_QUEUED;
    this.#queue[(this.#qHead + this.#qCount) % NBD_SLOTS] = s.index;
    this.#qCount++;
  }

  // --- the data path ----------------------------------------------------------------------

  poll(): number {
    this.#completed = 0;
    if (this.#state === ST_READY) {
      if (this.#busy === 0) {
        // Now and then an idle connection is read: a server that went away shows in
        // bdev_get_bdevs, and the next I/O does not first hit a dead socket.
        if (--this.#idleToCheck <= 0) this.#checkIdle();
        return 0;
      }
      this.#encode();
      if (this.#sendTail > this.#sendHead) this.#transmit();
      if (this.#wire > 0 && this.#state === ST_READY) this.#receive();
      if (this.#state === ST_READY && this.#shutdownSeen) this.#lost(0, 'the server is shutting down (NBD_ESHUTDOWN)');
      if (this.#state === ST_READY && --this.#pollsToCheck <= 0) this.#checkProgress();
    } else if (this.#state !== ST_CLOSED && this.#state !== ST_IDLE) {
      this.#advanceConnection();
    }
    return this.#completed;
  }

  /** Writes queued requests into the send buffer, as far as it has room. */
  #encode(): void {
    const dv = this.#sendDv;
    const bytes = this.#send.bytes;
    while (this.#qCount > 0) {
      const s = this.#slots[this.#queue[this.#qHead]];
      const payload = s.op === OP_WRITE || s.op === OP_ZERO_WRITE ? s.partLength : 0;
      let at = this.#sendTail;
      if (at + NBD_REQUEST_SIZE + payload > SEND_CAPACITY) break;
      this.#qHead = (this.#qHead + 1) % NBD_SLOTS;
      this.#qCount--;
      s.gen = (s.gen + 1) & 0x3fffffff;
      s.state = SLOT_SENT;
      s.covered = 0;
      this.#wire++;
      if (this.#wire === 1) this.#progressAt = -1;
      const offset = s.byteOffset + s.partOffset;
      dv.setUint32(at, NBD_REQUEST_MAGIC);
      dv.setUint16(at + 4, 0);
      dv.setUint16(at + 6, wireCommand(s.op));
      dv.setUint32(at + 8, s.gen);
      dv.setUint32(at + 12, s.index);
      dv.setUint32(at + 16, Math.floor(offset / TWO_32));
      dv.setUint32(at + 20, offset % TWO_32);
      dv.setUint32(at + 24, s.partLength);
      at += NBD_REQUEST_SIZE;
      if (s.op === OP_WRITE) (s.sg as SgList).copyOut(s.sgOffset + s.partOffset, bytes, at, payload);
      else if (payload > 0) bytes.fill(0, at, at + payload);
      this.#sendTail = at + payload;
    }
  }

  #transmit(): void {
    const n = (this.#stream as SocketStream).send(this.#send, this.#sendHead, this.#sendTail - this.#sendHead);
    if (n < 0) return this.#lost(-n, 'send failed');
    this.#sendHead += n;
    if (this.#sendHead === this.#sendTail) this.#sendHead = this.#sendTail = 0;
  }

  #receive(): void {
    const stream = this.#stream as SocketStream;
    for (let round = 0; round < RECV_ROUNDS; round++) {
      const n = stream.recv(this.#recv, 0, RECV_CAPACITY);
      if (n === -11) return;
      if (n === 0) return this.#lost(ECONNRESET, 'the server closed the connection');
      if (n < 0) return this.#lost(-n, 'receive failed');
      if (!this.#parser.feed(this.#recv.bytes, 0, n)) return this.#lost(EPROTO, `protocol error: ${String(this.#parser.error)}`);
      if (this.#state !== ST_READY) return;
      if (n < RECV_CAPACITY) return;
    }
  }

  /** NbdReplyHandler: a part got its reply. */
  partDone(s: NbdSlot): void {
    this.#wire--;
    if (s.status !== 0) return this.#finish(s, s.status);
    s.partOffset += s.partLength;
    if (s.partOffset < s.byteLength) {
      s.partLength = this.#partLength(s);
      this.#enqueue(s);
    } else this.#finish(s, BDEV_OK);
  }

  /** NbdReplyHandler: the request is resent on the next connection. */
  serverShutdown(s: NbdSlot): void {
    this.#wire--;
    this.#enqueue(s);
    this.#shutdownSeen = true;
  }

  #finish(s: NbdSlot, status: number): void {
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
    if (n > 0) this.#lost(EPROTO, `the server sent ${n} bytes with no request in flight`);
    else this.#lost(n === 0 ? ECONNRESET : -n, n === 0 ? 'the server closed the idle connection' : 'receive failed');
  }

  #checkProgress(): void {
    this.#pollsToCheck = TIMEOUT_CHECK_POLLS;
    const limit = this.#spec.timeouts.ioTimeoutMs;
    if (this.#wire === 0 || limit <= 0) return;
    const now = this.#nowMs();
    if (this.#progressAt < 0 || this.#parser.replies !== this.#progressReplies) {
      this.#progressAt = now;
      this.#progressReplies = this.#parser.replies;
    } else if (now - this.#progressAt >= limit) {
      this.#lost(ETIMEDOUT, `no reply for ${Math.round((now - this.#progressAt) / 1000)} s with ${this.#wire} requests waiting`);
    }
  }

  // --- the connection ---------------------------------------------------------------------

  #nowMs(): number {
    this.#clock.read();
    return this.#clock.sec * 1000 + Math.floor(this.#clock.nsec / 1e6);
  }

  #connect(): void {
    const now = this.#nowMs();
    if (this.#lostSince === 0) this.#lostSince = now;
    this.#attemptDeadline = now + this.#spec.timeouts.connectMs;
    try {
      const { fd, pending } = startConnect(this.#spec.target);
      this.#fd = fd;
      this.#state = pending ? ST_CONNECTING : ST_HANDSHAKE;
      if (!pending) this.#startHandshake();
    } catch (e) {
      this.#attemptFailed(e instanceof SysError ? e.errno : 0, e instanceof Error ? e.message : String(e));
    }
  }

  #startHandshake(): void {
    this.#state = ST_HANDSHAKE;
    this.#stream = new SocketStream(this.#fd);
    this.#handshake = new NbdHandshake(this.#spec.exportName);
    this.#sendHead = this.#sendTail = 0;
  }

  #advanceConnection(): void {
    const now = this.#nowMs();
    if (this.#state === ST_BACKOFF) {
      if (now >= this.#retryAt) this.#connect();
    } else if (now >= this.#attemptDeadline) {
      this.#attemptFailed(ETIMEDOUT, `no ${this.#state === ST_CONNECTING ? 'connection' : 'handshake'} within ${this.#spec.timeouts.connectMs} ms`);
    } else if (this.#state === ST_CONNECTING) {
      const st = connectStatus(this.#fd);
      if (st === 0) this.#startHandshake();
      else if (st > 0) this.#attemptFailed(st, 'connect failed');
    } else if (this.#state === ST_HANDSHAKE) {
      this.#stepHandshake();
    }
    // Held I/O must not wait for a server that stays away.
    const limit = this.#spec.timeouts.fastIoFailMs;
    if (this.#state !== ST_READY && limit > 0 && this.#lostSince > 0 && now - this.#lostSince >= limit && !this.#failFast) {
      this.#failFast = true;
      const n = this.#busy;
      this.#failAll(BDEV_EIO);
      log.error({ bdev: this.name, server: this.#where, failed: n }, `no connection for ${Math.round((now - this.#lostSince) / 1000)} s: I/O fails with EIO until the server is back`);
    }
  }

  #stepHandshake(): void {
    const hs = this.#handshake as NbdHandshake;
    const stream = this.#stream as SocketStream;
    const out = hs.takeOutput();
    if (out !== null) {
      this.#send.bytes.set(out, this.#sendTail);
      this.#sendTail += out.length;
    }
    if (this.#sendTail > this.#sendHead) {
      const n = stream.send(this.#send, this.#sendHead, this.#sendTail - this.#sendHead);
      if (n < 0) return this.#attemptFailed(-n, 'send failed during the handshake');
      this.#sendHead += n;
      if (this.#sendHead === this.#sendTail) this.#sendHead = this.#sendTail = 0;
    }
    const failed = hs.failed;
    if (failed !== null) return this.#attemptFailed(failed.errno, failed.message);
    const n = stream.recv(this.#recv, 0, 65536);
    if (n === -11) return;
    if (n <= 0) {
      hs.closed();
      const e = hs.failed;
      return this.#attemptFailed(n === 0 ? ECONNRESET : -n, e !== null ? e.message : 'connection closed');
    }
    const used = hs.feed(this.#recv.bytes.subarray(0, n));
    if (hs.failed !== null) return this.#stepHandshake();
    if (!hs.done) return;
    if (used < n) return this.#attemptFailed(EPROTO, `server sent ${n - used} bytes after the handshake`);
    this.#ready();
  }

  #ready(): void {
    const hs = this.#handshake as NbdHandshake;
    const info = hs.info;
    this.#handshake = null;
    const need = this.numBlocks * this.blockSize;
    if (info.sizeBytes < need) return this.#attemptFailed(22, `export is now ${info.sizeBytes} bytes, smaller than the bdev's ${need}`);
    if (this.blockSize % info.minBlock !== 0) return this.#attemptFailed(22, `export's minimum block is now ${info.minBlock} bytes, not a divisor of ${this.blockSize}`);
    this.#flags = info.flags;
    const bs = this.blockSize;
    this.#dataPart = Math.max(bs, Math.floor(Math.min(MAX_DATA_PART, info.maxPayload) / bs) * bs);
    this.#noDataPart = Math.max(bs, Math.floor(info.maxPayload / bs) * bs);
    this.#parser.reset();
    this.#shutdownSeen = false;
    this.#sendHead = this.#sendTail = 0;
    this.#state = ST_READY;
    this.#pollsToCheck = TIMEOUT_CHECK_POLLS;
    this.#idleToCheck = IDLE_CHECK_POLLS;
    this.#progressAt = -1;
    const connected = Atomics.add(this.#ctl, CTL_CONNECTED, 1) + 1;
    Atomics.add(this.#ctl, CTL_CONNECTS, 1);
    if ((info.flags & NBD_FLAG_CAN_MULTI_CONN) === 0 && connected > 1 && !this.#multiConnWarned) {
      this.#multiConnWarned = true;
      log.warn(
        { bdev: this.name, server: this.#where, connections: connected },
        'the export does not offer NBD_FLAG_CAN_MULTI_CONN, yet the bdev has a connection per reactor: a flush on one may not cover writes made on another (qemu-nbd: -e 0 or -e N>1 sets the flag)',
      );
    }
    const wasDown = this.#outageLogged || this.#failFast;
    if (wasDown) log.info({ bdev: this.name, server: this.#where, resent: this.#qCount }, `connected again after ${Math.round((this.#nowMs() - this.#lostSince) / 100) / 10} s`);
    this.#lostSince = 0;
    this.#failFast = false;
    this.#outageLogged = false;
    // What was queued before the connection was ready now follows the new flags.
    this.#requeueAll(false);
  }

  #attemptFailed(errno: number, why: string): void {
    this.#closeSocket();
    Atomics.store(this.#ctl, CTL_LAST_ERRNO, errno);
    if (!this.#outageLogged) {
      this.#outageLogged = true;
      log.warn({ bdev: this.name, server: this.#where, errno: errnoName(errno), waiting: this.#busy }, `cannot connect: ${why}; retrying every ${this.#spec.timeouts.reconnectDelayMs} ms`);
    }
    this.#state = ST_BACKOFF;
    this.#retryAt = this.#nowMs() + this.#spec.timeouts.reconnectDelayMs;
    // Past fast_io_fail_timeout, I/O waits only for an attempt in progress.
    if (this.#failFast && this.#busy > 0) this.#failAll(BDEV_EIO);
  }

  /** The connection broke: requests without a reply go back to the queue for the next one. */
  #lost(errno: number, why: string): void {
    this.#closeSocket();
    Atomics.sub(this.#ctl, CTL_CONNECTED, 1);
    Atomics.add(this.#ctl, CTL_LOSSES, 1);
    if (errno !== 0) Atomics.store(this.#ctl, CTL_LAST_ERRNO, errno);
    const resent = this.#requeueAll(true);
    if (this.#busy === 0) {
      // Nothing waits: connect again at the next I/O (a reactor asleep would stall a handshake).
      log.warn({ bdev: this.name, server: this.#where, errno: errno !== 0 ? errnoName(errno) : undefined }, `connection lost: ${why}; reconnecting at the next I/O`);
      this.#state = ST_IDLE;
      return;
    }
    log.warn({ bdev: this.name, server: this.#where, errno: errno !== 0 ? errnoName(errno) : undefined, resend: resent }, `connection lost: ${why}; reconnecting`);
    this.#outageLogged = true;
    this.#lostSince = this.#nowMs();
    // The first attempt at once: a dropped connection to a live server comes straight back.
    this.#connect();
  }

  /** Puts every busy slot back in the queue (in slot order); returns how many were on the wire. */
  #requeueAll(count: boolean): number {
    let onWire = 0;
    this.#qHead = 0;
    this.#qCount = 0;
    for (let i = 0; i < NBD_SLOTS; i++) {
      const s = this.#slots[i];
      if (s.state === SLOT_FREE) continue;
      if (s.state === SLOT_SENT) onWire++;
      // A write-zeroes goes out as zero writes where the (new) server has no command for it.
      if (s.op === OP_WRITE_ZEROES || s.op === OP_ZERO_WRITE) s.op = (this.#flags & NBD_FLAG_SEND_WRITE_ZEROES) !== 0 ? OP_WRITE_ZEROES : OP_ZERO_WRITE;
      // The current part starts again, sized for this server.
      s.partLength = this.#partLength(s);
      this.#enqueue(s);
    }
    this.#wire = 0;
    if (count && onWire > 0) Atomics.add(this.#ctl, CTL_RESENT, onWire);
    this.#settleUnsupported();
    return onWire;
  }

  /** After a (re)connect: requests the server's flags rule out complete now. */
  #settleUnsupported(): void {
    if (this.#state !== ST_READY) return;
    const f = this.#flags;
    const n = this.#qCount;
    for (let k = 0; k < n; k++) {
      const s = this.#slots[this.#queue[this.#qHead]];
      this.#qHead = (this.#qHead + 1) % NBD_SLOTS;
      this.#qCount--;
      if (s.op === OP_FLUSH && (f & NBD_FLAG_SEND_FLUSH) === 0) this.#finish(s, BDEV_OK);
      else if (s.op === OP_TRIM && (f & NBD_FLAG_SEND_TRIM) === 0) this.#finish(s, BDEV_ENOTSUP);
      else if (s.op !== OP_READ && s.op !== OP_FLUSH && (f & NBD_FLAG_READ_ONLY) !== 0) this.#finish(s, BDEV_EROFS);
      else this.#enqueue(s);
    }
  }

  #failAll(status: number): void {
    for (let i = 0; i < NBD_SLOTS; i++) {
      const s = this.#slots[i];
      if (s.state === SLOT_FREE) continue;
      Atomics.add(this.#ctl, CTL_FAILED_IOS, 1);
      this.#finish(s, status);
    }
    this.#qHead = 0;
    this.#qCount = 0;
    this.#wire = 0;
  }

  #closeSocket(): void {
    if (this.#fd >= 0) closeFd(this.#fd);
    this.#fd = -1;
    this.#stream = null;
    this.#handshake = null;
    this.#sendHead = this.#sendTail = 0;
    this.#parser.reset();
  }

  // --- the rest of BdevChannel -----------------------------------------------------------

  /** Requests held, plus one while a handshake runs: the reactor keeps polling until it ends. */
  inflight(): number {
    return this.#busy + (this.#state === ST_CONNECTING || this.#state === ST_HANDSHAKE ? 1 : 0);
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
    if (this.#state === ST_READY) {
      // NBD_CMD_DISC: the server finishes and closes without logging an error.
      const dv = this.#sendDv;
      dv.setUint32(0, NBD_REQUEST_MAGIC);
      dv.setUint32(4, NBD_CMD_DISC);
      for (let i = 8; i < NBD_REQUEST_SIZE; i++) this.#send.bytes[i] = 0;
      (this.#stream as SocketStream).send(this.#send, 0, NBD_REQUEST_SIZE);
      Atomics.sub(this.#ctl, CTL_CONNECTED, 1);
    }
    this.#closeSocket();
    this.#state = ST_CLOSED;
    this.numBlocks = 0;
    Atomics.sub(this.#ctl, CTL_CHANNELS, 1);
    // Nothing reads the buffers any more (replies are parsed only from poll).
    this.#send.free();
    this.#recv.free();
  }
}

function wireCommand(op: number): number {
  switch (op) {
    case OP_READ:
      return NBD_CMD_READ;
    case OP_WRITE:
    case OP_ZERO_WRITE:
      return NBD_CMD_WRITE;
    case OP_FLUSH:
      return NBD_CMD_FLUSH;
    case OP_TRIM:
      return NBD_CMD_TRIM;
    default:
      return NBD_CMD_WRITE_ZEROES;
  }
}
