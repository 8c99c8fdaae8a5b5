// Parses the server's side of NBD's transmission phase as a byte stream: simple replies and
// structured reply chunks, in whatever pieces recv() returned them. Read data is copied straight
// from the receive buffer into the request's scatter-gather list; nothing is allocated per reply.
// A reply that does not fit a request in flight is a protocol error: the stream cannot be
// resynchronised, so the channel drops the connection and resends.
import { BDEV_EIO } from '../bdev.ts';
import {
  NBD_ESHUTDOWN,
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE_ERROR_BIT,
  NBD_REPLY_TYPE_NONE,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_REPLY_TYPE_OFFSET_HOLE,
  NBD_SIMPLE_REPLY_MAGIC,
  NBD_SIMPLE_REPLY_SIZE,
  NBD_STRUCTURED_HEADER_SIZE,
  NBD_STRUCTURED_REPLY_MAGIC,
  nbdErrorStatus,
} from './nbd-wire.ts';
import { NbdSlot, OP_READ, SLOT_SENT } from './nbd-slot.ts';

const P_HEADER = 0;
const P_DATA = 1; // read data into the slot's sg
const P_PREFIX = 2; // fixed start of a chunk's payload (data offset, hole, error)
const P_SKIP = 3;

const TWO_32 = 0x1_0000_0000;
/** Longest structured chunk payload accepted for anything but read data. */
const MAX_CHUNK_META = 65536;

export interface NbdReplyHandler {
  /** The current part of slot got its whole reply (slot.status holds any error). */
  partDone(slot: NbdSlot): void;
  /** The server said it is shutting down (NBD_ESHUTDOWN): the request should be resent elsewhere. */
  serverShutdown(slot: NbdSlot): void;
}

export class NbdReplyParser {
  readonly #slots: readonly NbdSlot[];
  readonly #handler: NbdReplyHandler;
  readonly #hdr = new Uint8Array(32);
  readonly #dv = new DataView(this.#hdr.buffer);
  #state = P_HEADER;
  #have = 0;
  #need = NBD_SIMPLE_REPLY_SIZE;
  #slot: NbdSlot | null = null;
  /** Structured chunk being read: its flags, type and payload bytes not yet consumed. */
  #chunkFlags = 0;
  #chunkType = 0;
  #chunkLeft = 0;
  /** P_DATA: where the next byte goes in the slot's sg (bytes from the part's start). */
  #dataPos = 0;
  #dataLeft = 0;
  /** Set when the stream broke: what was wrong. */
  error: string | null = null;
  /** Replies (final parts) parsed; the channel's progress counter. */
  replies = 0;

  constructor(slots: readonly NbdSlot[], handler: NbdReplyHandler) {
    this.#slots = slots;
    this.#handler = handler;
  }

  /** Back to the start of a reply, for a new connection. */
  reset(): void {
    this.#state = P_HEADER;
    this.#have = 0;
    this.#need = NBD_SIMPLE_REPLY_SIZE;
    this.#slot = null;
    this.error = null;
  }

  /** Consumes buf[off, off+len); false once the stream broke (see error). */
  feed(buf: Uint8Array, off: number, len: number): boolean {
    const end = off + len;
    let p = off;
    while (p < end) {
      if (this.error !== null) return false;
      const avail = end - p;
      switch (this.#state) {
        case P_HEADER:
        case P_PREFIX: {
          const n = Math.min(this.#need - this.#have, avail);
          const h = this.#hdr;
          for (let i = 0; i < n; i++) h[this.#have + i] = buf[p + i];
          this.#have += n;
          p += n;
          if (this.#have === this.#need) {
            if (this.#state === P_HEADER) this.#header();
            else this.#prefix();
          }
          break;
        }
        case P_DATA: {
          const n = Math.min(this.#dataLeft, avail);
          const s = this.#slot as NbdSlot;
          (s.sg as NonNullable<NbdSlot['sg']>).copyIn(s.sgOffset + s.partOffset + this.#dataPos, buf, p, n);
          this.#dataPos += n;
          this.#dataLeft -= n;
          p += n;
          if (this.#dataLeft === 0) this.#afterPayload();
          break;
        }
        default: {
          const n = Math.min(this.#chunkLeft, avail);
          this.#chunkLeft -= n;
          p += n;
          if (this.#chunkLeft === 0) this.#chunkEnd();
        }
      }
    }
    return this.error === null;
  }

  #fail(what: string): void {
    this.error = what;
  }

  #lookup(): NbdSlot | null {
    const dv = this.#dv;
    const hi = dv.getUint32(8);
    const lo = dv.getUint32(12);
    const s = lo < this.#slots.length ? this.#slots[lo] : null;
    if (s === null || s.state !== SLOT_SENT || s.gen !== hi) {
      this.#fail(`reply for cookie ${hi}:${lo}, which is not a request in flight`);
      return null;
    }
    return s;
  }

  #header(): void {
    const dv = this.#dv;
    const magic = dv.getUint32(0);
    if (magic === NBD_SIMPLE_REPLY_MAGIC) {
      const s = this.#lookup();
      if (s === null) return;
      this.#slot = s;
      const err = dv.getUint32(4);
      if (err !== 0) {
        this.#serverError(s, err);
        this.#finish(s);
      } else if (s.op === OP_READ) {
        // Data follows only for a successful read, exactly the requested length.
        this.#state = P_DATA;
        this.#dataPos = 0;
        this.#dataLeft = s.partLength;
        this.#chunkFlags = NBD_REPLY_FLAG_DONE;
        this.#chunkType = -1;
        s.covered = s.partLength;
        if (this.#dataLeft === 0) this.#afterPayload();
        return;
      } else this.#finish(s);
      this.#restart();
      return;
    }
    if (magic !== NBD_STRUCTURED_REPLY_MAGIC) {
      this.#fail(`bad reply magic 0x${magic.toString(16)}`);
      return;
    }
    if (this.#need < NBD_STRUCTURED_HEADER_SIZE) {
      this.#need = NBD_STRUCTURED_HEADER_SIZE;
      return; // the chunk header's last 4 bytes (payload length)
    }
    const s = this.#lookup();
    if (s === null) return;
    this.#slot = s;
    this.#chunkFlags = dv.getUint16(4);
    this.#chunkType = dv.getUint16(6);
    this.#chunkLeft = dv.getUint32(16);
    const t = this.#chunkType;
    if (t === NBD_REPLY_TYPE_NONE) {
      if (this.#chunkLeft !== 0 || (this.#chunkFlags & NBD_REPLY_FLAG_DONE) === 0) this.#fail('NBD_REPLY_TYPE_NONE with a payload or without DONE');
      else this.#chunkEnd();
      return;
    }
    let prefix: number;
    if (t === NBD_REPLY_TYPE_OFFSET_DATA) {
      if (s.op !== OP_READ || this.#chunkLeft < 9) return this.#fail(`data chunk of ${this.#chunkLeft} bytes for a non-read or empty`);
      prefix = 8;
    } else if (t === NBD_REPLY_TYPE_OFFSET_HOLE) {
      if (s.op !== OP_READ || this.#chunkLeft !== 12) return this.#fail(`hole chunk of ${this.#chunkLeft} bytes (12 expected) or for a non-read`);
      prefix = 12;
    } else if ((t & NBD_REPLY_TYPE_ERROR_BIT) !== 0) {
      // Every error type starts with the u32 error, then a message: the request failed.
      if (this.#chunkLeft < 6 || this.#chunkLeft > MAX_CHUNK_META) return this.#fail(`error chunk of ${this.#chunkLeft} bytes`);
      prefix = 4;
    } else {
      this.#fail(`unexpected structured reply chunk type ${t}`);
      return;
    }
    this.#state = P_PREFIX;
    this.#have = 0;
    this.#need = prefix;
  }

  #prefix(): void {
    const s = this.#slot as NbdSlot;
    const dv = this.#dv;
    this.#chunkLeft -= this.#need;
    const t = this.#chunkType;
    if ((t & NBD_REPLY_TYPE_ERROR_BIT) !== 0) {
      const err = dv.getUint32(0);
      this.#serverError(s, err === 0 ? 5 : err);
      this.#skipRest();
      return;
    }
    const at = dv.getUint32(0) * TWO_32 + dv.getUint32(4) - (s.byteOffset + s.partOffset);
    const len = t === NBD_REPLY_TYPE_OFFSET_HOLE ? dv.getUint32(8) : this.#chunkLeft;
    if (at < 0 || len === 0 || at + len > s.partLength) {
      this.#fail(`read chunk [${at}, +${len}) outside the request's ${s.partLength} bytes`);
      return;
    }
    s.covered += len;
    if (t === NBD_REPLY_TYPE_OFFSET_HOLE) {
      (s.sg as NonNullable<NbdSlot['sg']>).fill(s.sgOffset + s.partOffset + at, 0, len);
      this.#chunkEnd();
      return;
    }
    this.#state = P_DATA;
    this.#dataPos = at;
    this.#dataLeft = len;
    this.#chunkLeft = 0;
  }

  #skipRest(): void {
    if (this.#chunkLeft === 0) this.#chunkEnd();
    else this.#state = P_SKIP;
  }

  #afterPayload(): void {
    if (this.#chunkType === -1) {
      this.#finish(this.#slot as NbdSlot);
      this.#restart();
    } else this.#chunkEnd();
  }

  #chunkEnd(): void {
    const s = this.#slot as NbdSlot;
    if ((this.#chunkFlags & NBD_REPLY_FLAG_DONE) !== 0) {
      // A read that succeeded must have covered every byte, or the guest would see stale memory.
      if (s.op === OP_READ && s.status === 0 && s.covered !== s.partLength) s.status = BDEV_EIO;
      this.#finish(s);
    }
    this.#restart();
  }

  #serverError(s: NbdSlot, err: number): void {
    if (err === NBD_ESHUTDOWN) s.status = 1; // marker, turned into a resend by #finish
    else if (s.status === 0) s.status = nbdErrorStatus(err);
  }

  #finish(s: NbdSlot): void {
    this.replies++;
    if (s.status === 1) {
      s.status = 0;
      this.#handler.serverShutdown(s);
    } else this.#handler.partDone(s);
  }

  #restart(): void {
    this.#state = P_HEADER;
    this.#have = 0;
    this.#need = NBD_SIMPLE_REPLY_SIZE;
    this.#slot = null;
  }
}
