// The client side of NBD's fixed-newstyle handshake as a transport-free state machine: feed() it
// the bytes the server sent, send what takeOutput() returns, until done or failed. The daemon's
// control plane runs it over a node:net socket (the probe in bdev_nbd_client_create), each reactor
// channel over its own non-blocking socket. Asks for structured replies and the block-size
// constraints; falls back to NBD_OPT_EXPORT_NAME where the server has no NBD_OPT_GO.
import {
  NBD_DEFAULT_MAX_PAYLOAD,
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_FLAG_FIXED_NEWSTYLE,
  NBD_FLAG_HAS_FLAGS,
  NBD_FLAG_NO_ZEROES,
  NBD_IHAVEOPT,
  NBD_INFO_BLOCK_SIZE,
  NBD_INFO_EXPORT,
  NBD_MAGIC,
  NBD_MAX_NAME,
  NBD_OLDSTYLE_MAGIC,
  NBD_OPT_ABORT,
  NBD_OPT_EXPORT_NAME,
  NBD_OPT_GO,
  NBD_OPT_REPLY_MAGIC,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_REP_ACK,
  NBD_REP_ERR_POLICY,
  NBD_REP_ERR_PLATFORM,
  NBD_REP_ERR_SHUTDOWN,
  NBD_REP_ERR_TLS_REQD,
  NBD_REP_ERR_UNKNOWN,
  NBD_REP_ERR_UNSUP,
  NBD_REP_FLAG_ERROR,
  NBD_REP_INFO,
} from './nbd-wire.ts';

export type NbdErrorCode =
  | 'NBD_CONNECT_FAILED'
  | 'NBD_TIMEOUT'
  | 'NBD_PROTOCOL'
  | 'NBD_EXPORT_NOT_FOUND'
  | 'NBD_REFUSED'
  | 'NBD_TLS_REQUIRED'
  | 'NBD_SHUTDOWN'
  | 'NBD_OPTION_FAILED'
  | 'NBD_BAD_EXPORT';

const ERRNO_OF: Record<NbdErrorCode, number> = {
  NBD_CONNECT_FAILED: 111, // ECONNREFUSED
  NBD_TIMEOUT: 110, // ETIMEDOUT
  NBD_PROTOCOL: 71, // EPROTO
  NBD_EXPORT_NOT_FOUND: 2, // ENOENT
  NBD_REFUSED: 1, // EPERM
  NBD_TLS_REQUIRED: 95, // ENOTSUP
  NBD_SHUTDOWN: 108, // ESHUTDOWN
  NBD_OPTION_FAILED: 5, // EIO
  NBD_BAD_EXPORT: 22, // EINVAL
};

export class NbdError extends Error {
  readonly code: NbdErrorCode;
  /** What the RPC layer reports (errnoOf reads it). */
  readonly errno: number;
  constructor(code: NbdErrorCode, message: string) {
    super(message);
    this.name = 'NbdError';
    this.code = code;
    this.errno = ERRNO_OF[code];
  }
}

/** What the handshake learned about the export. Structured-cloneable. */
export interface NbdExportInfo {
  sizeBytes: number;
  /** Transmission flags (NBD_FLAG_*). */
  flags: number;
  /** Block-size constraints; 1 / 4096 / 32 MiB when the server gave none. */
  minBlock: number;
  preferredBlock: number;
  maxPayload: number;
  /** The server answers reads with structured replies. */
  structuredReplies: boolean;
  /** NBD_OPT_GO was refused and the old NBD_OPT_EXPORT_NAME was used. */
  exportNameFallback: boolean;
}

type Phase = 'greeting' | 'structured' | 'go' | 'export-name' | 'done' | 'failed';

const isPow2 = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;

export class NbdHandshake {
  readonly exportName: string;
  #phase: Phase = 'greeting';
  #in = Buffer.alloc(0);
  #out: Buffer[] = [];
  #noZeroes = false;
  #fixedNewstyle = false;
  #structured = false;
  #size = -1;
  #flags = 0;
  #minBlock = 0;
  #preferredBlock = 0;
  #maxPayload = 0;
  #fallback = false;
  #error: NbdError | null = null;
  readonly #wantStructured: boolean;

  constructor(exportName: string, opts: { structuredReplies?: boolean } = {}) {
    const len = Buffer.byteLength(exportName);
    if (len > NBD_MAX_NAME || exportName.includes('\0')) throw new NbdError('NBD_BAD_EXPORT', `export name of ${len} bytes: at most ${NBD_MAX_NAME}, no NUL`);
    this.exportName = exportName;
    this.#wantStructured = opts.structuredReplies ?? true;
  }

  get done(): boolean {
    return this.#phase === 'done';
  }

  get failed(): NbdError | null {
    return this.#error;
  }

  /** The export's parameters; only once done. */
  get info(): NbdExportInfo {
    if (this.#phase !== 'done') throw new Error('NBD handshake not finished');
    return {
      sizeBytes: this.#size,
      flags: this.#flags,
      minBlock: this.#minBlock || 1,
      preferredBlock: this.#preferredBlock || 4096,
      maxPayload: this.#maxPayload || NBD_DEFAULT_MAX_PAYLOAD,
      structuredReplies: this.#structured,
      exportNameFallback: this.#fallback,
    };
  }

  /** Bytes to send to the server now, or null. */
  takeOutput(): Buffer | null {
    if (this.#out.length === 0) return null;
    const b = this.#out.length === 1 ? this.#out[0] : Buffer.concat(this.#out);
    this.#out = [];
    return b;
  }

  /**
   * Takes bytes from the server. Returns how many it consumed: fewer than given only once done
   * (the rest belongs to the transmission phase) or failed.
   */
  feed(bytes: Uint8Array): number {
    if (this.#phase === 'done' || this.#phase === 'failed') return 0;
    this.#in = this.#in.length === 0 ? Buffer.from(bytes) : Buffer.concat([this.#in, bytes]);
    try {
      while (this.#step());
    } catch (e) {
      if (!(e instanceof NbdError)) throw e;
      this.#fail(e);
    }
    if (!this.#ended()) return bytes.length;
    // What is left follows the last message: a suffix of these bytes (earlier ones were an
    // incomplete message, now complete).
    const left = this.#in.length;
    this.#in = Buffer.alloc(0);
    return bytes.length - left;
  }

  #ended(): boolean {
    return this.#phase === 'done' || this.#phase === 'failed';
  }

  /** The connection closed before the handshake finished. */
  closed(): void {
    if (this.#phase === 'done' || this.#phase === 'failed') return;
    this.#fail(
      this.#phase === 'export-name'
        ? new NbdError('NBD_EXPORT_NOT_FOUND', `server closed the connection after NBD_OPT_EXPORT_NAME '${this.exportName}' (no such export, or refused)`)
        : new NbdError('NBD_PROTOCOL', `server closed the connection during the handshake (${this.#phase})`),
    );
  }

  #fail(e: NbdError): void {
    // A soft disconnect where the protocol allows one, so the server logs no error.
    if (this.#fixedNewstyle && this.#phase !== 'greeting' && this.#phase !== 'export-name') this.#out.push(optionHeader(NBD_OPT_ABORT, 0));
    this.#error = e;
    this.#phase = 'failed';
  }

  /** Consumes one message if it is complete; false when more bytes are needed. */
  #step(): boolean {
    const b = this.#in;
    switch (this.#phase) {
      case 'greeting':
        return this.#greeting(b);
      case 'structured':
      case 'go':
        return this.#optionReply(b);
      case 'export-name':
        return this.#exportNameReply(b);
      default:
        return false;
    }
  }

  #consume(n: number): void {
    this.#in = this.#in.subarray(n);
  }

  #greeting(b: Buffer): boolean {
    if (b.length < 16) return false;
    if (b.readBigUInt64BE(0) !== NBD_MAGIC) throw new NbdError('NBD_PROTOCOL', 'not an NBD server (no NBDMAGIC in the greeting)');
    const magic = b.readBigUInt64BE(8);
    if (magic === NBD_OLDSTYLE_MAGIC) throw new NbdError('NBD_PROTOCOL', 'server speaks the oldstyle protocol only (unsupported)');
    if (magic !== NBD_IHAVEOPT) throw new NbdError('NBD_PROTOCOL', `bad greeting magic 0x${magic.toString(16)}`);
    if (b.length < 18) return false;
    const hs = b.readUInt16BE(16);
    this.#consume(18);
    this.#fixedNewstyle = (hs & NBD_FLAG_FIXED_NEWSTYLE) !== 0;
    this.#noZeroes = (hs & NBD_FLAG_NO_ZEROES) !== 0;
    const cflags = Buffer.alloc(4);
    cflags.writeUInt32BE((this.#fixedNewstyle ? NBD_FLAG_C_FIXED_NEWSTYLE : 0) | (this.#noZeroes ? NBD_FLAG_C_NO_ZEROES : 0));
    this.#out.push(cflags);
    if (!this.#fixedNewstyle) this.#sendExportName();
    else if (this.#wantStructured) {
      this.#out.push(optionHeader(NBD_OPT_STRUCTURED_REPLY, 0));
      this.#phase = 'structured';
    } else this.#sendGo();
    return true;
  }

  #sendGo(): void {
    const name = Buffer.from(this.exportName);
    const data = Buffer.alloc(4 + name.length + 2 + 2);
    data.writeUInt32BE(name.length, 0);
    name.copy(data, 4);
    data.writeUInt16BE(1, 4 + name.length);
    data.writeUInt16BE(NBD_INFO_BLOCK_SIZE, 6 + name.length);
    this.#out.push(optionHeader(NBD_OPT_GO, data.length), data);
    this.#phase = 'go';
  }

  #sendExportName(): void {
    const name = Buffer.from(this.exportName);
    this.#out.push(optionHeader(NBD_OPT_EXPORT_NAME, name.length), name);
    this.#phase = 'export-name';
    this.#fallback = true;
  }

  #optionReply(b: Buffer): boolean {
    if (b.length < 20) return false;
    if (b.readBigUInt64BE(0) !== NBD_OPT_REPLY_MAGIC) throw new NbdError('NBD_PROTOCOL', 'bad option reply magic');
    const opt = b.readUInt32BE(8);
    const type = b.readUInt32BE(12);
    const len = b.readUInt32BE(16);
    const expected = this.#phase === 'structured' ? NBD_OPT_STRUCTURED_REPLY : NBD_OPT_GO;
    if (opt !== expected) throw new NbdError('NBD_PROTOCOL', `reply for option ${opt} while waiting for option ${expected}`);
    if (len > 65536) throw new NbdError('NBD_PROTOCOL', `option reply of ${len} bytes`);
    if (b.length < 20 + len) return false;
    const payload = b.subarray(20, 20 + len);
    this.#consume(20 + len);
    if (this.#phase === 'structured') {
      // Any refusal just means simple replies.
      this.#structured = type === NBD_REP_ACK;
      this.#sendGo();
      return true;
    }
    if (type === NBD_REP_INFO) {
      this.#info(payload);
      return true;
    }
    if (type === NBD_REP_ACK) {
      if (this.#size < 0) throw new NbdError('NBD_PROTOCOL', 'NBD_OPT_GO succeeded without NBD_INFO_EXPORT');
      this.#finish();
      return false;
    }
    if ((type & NBD_REP_FLAG_ERROR) === 0) return true; // an informational reply we did not ask for
    if (type === NBD_REP_ERR_UNSUP) {
      this.#sendExportName();
      return true;
    }
    const msg = payload.length > 0 ? `: ${payload.toString('utf8').slice(0, 256)}` : '';
    const what = `export '${this.exportName}'`;
    switch (type) {
      case NBD_REP_ERR_UNKNOWN:
        throw new NbdError('NBD_EXPORT_NOT_FOUND', `server has no ${what}${msg}`);
      case NBD_REP_ERR_POLICY:
      case NBD_REP_ERR_PLATFORM:
        throw new NbdError('NBD_REFUSED', `server refused ${what} (policy)${msg}`);
      case NBD_REP_ERR_TLS_REQD:
        throw new NbdError('NBD_TLS_REQUIRED', `server requires TLS for ${what} (not supported)${msg}`);
      case NBD_REP_ERR_SHUTDOWN:
        throw new NbdError('NBD_SHUTDOWN', `server is shutting down${msg}`);
      default:
        throw new NbdError('NBD_OPTION_FAILED', `NBD_OPT_GO for ${what} failed with 0x${type.toString(16)}${msg}`);
    }
  }

  #info(p: Buffer): void {
    if (p.length < 2) throw new NbdError('NBD_PROTOCOL', 'NBD_REP_INFO without an info type');
    const t = p.readUInt16BE(0);
    if (t === NBD_INFO_EXPORT) {
      if (p.length !== 12) throw new NbdError('NBD_PROTOCOL', `NBD_INFO_EXPORT of ${p.length} bytes (12 expected)`);
      this.#setExport(p.readBigUInt64BE(2), p.readUInt16BE(10));
    } else if (t === NBD_INFO_BLOCK_SIZE) {
      if (p.length !== 14) throw new NbdError('NBD_PROTOCOL', `NBD_INFO_BLOCK_SIZE of ${p.length} bytes (14 expected)`);
      const min = p.readUInt32BE(2);
      const pref = p.readUInt32BE(6);
      const max = p.readUInt32BE(10);
      if (!isPow2(min) || min > 65536 || !isPow2(pref) || pref < min || max < pref) {
        throw new NbdError('NBD_PROTOCOL', `invalid block sizes: minimum ${min}, preferred ${pref}, maximum payload ${max}`);
      }
      this.#minBlock = min;
      this.#preferredBlock = pref;
      this.#maxPayload = Math.min(max, NBD_DEFAULT_MAX_PAYLOAD * 2);
    }
    // Other info types are ignored, as the protocol requires.
  }

  #setExport(size: bigint, flags: number): void {
    if (size <= 0n || size > BigInt(Number.MAX_SAFE_INTEGER)) throw new NbdError('NBD_BAD_EXPORT', `export size ${size} bytes is not usable`);
    if ((flags & NBD_FLAG_HAS_FLAGS) === 0) throw new NbdError('NBD_PROTOCOL', `transmission flags 0x${flags.toString(16)} lack NBD_FLAG_HAS_FLAGS`);
    this.#size = Number(size);
    this.#flags = flags;
  }

  #exportNameReply(b: Buffer): boolean {
    const need = this.#noZeroes ? 10 : 134;
    if (b.length < need) return false;
    this.#setExport(b.readBigUInt64BE(0), b.readUInt16BE(8));
    this.#consume(need);
    this.#finish();
    return false;
  }

  #finish(): void {
    this.#phase = 'done';
  }
}

function optionHeader(option: number, length: number): Buffer {
  const h = Buffer.alloc(16);
  h.writeBigUInt64BE(NBD_IHAVEOPT, 0);
  h.writeUInt32BE(option, 8);
  h.writeUInt32BE(length, 12);
  return h;
}
