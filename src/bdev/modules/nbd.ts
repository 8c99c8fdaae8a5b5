// The NBD client bdev: a disk served by an NBD server (qemu-nbd, nbdkit, nbd-server) over TCP or
// a Unix socket. Creating one probes the export (handshake, size, flags, block sizes) from the
// main thread and then lets the connection go; each reactor channel opens its own connection
// (nbd-channel.ts) at its first I/O. Channels report their connections through shared control
// words, which bdev_get_bdevs shows.
import { lookup } from 'node:dns/promises';
import { connect, isIP, type Socket } from 'node:net';
import type { Bdev, BdevIoTypes } from '../bdev.ts';
import { BdevError } from '../bdev-error.ts';
import { checkBdevName, checkBlockSize, normalizeUuid } from '../bdev-geometry.ts';
import { componentLogger } from '../../log/logger.ts';
import { errnoName } from '../../sys/errno.ts';
import { describeTarget, type StreamTarget } from '../../sys/stream-socket.ts';
import { NbdError, NbdHandshake, type NbdExportInfo } from './nbd-handshake.ts';
import {
  CTL_CHANNELS,
  CTL_CONNECTED,
  CTL_CONNECTS,
  CTL_FAILED_IOS,
  CTL_LAST_ERRNO,
  CTL_LOSSES,
  CTL_RESENT,
  CTL_WORDS,
  NBD_MODULE,
  type NbdChannelSpec,
  type NbdTimeouts,
} from './nbd-shared.ts';
import {
  NBD_CMD_DISC,
  NBD_FLAG_CAN_MULTI_CONN,
  NBD_FLAG_READ_ONLY,
  NBD_FLAG_SEND_FLUSH,
  NBD_FLAG_SEND_TRIM,
  NBD_REQUEST_MAGIC,
  NBD_REQUEST_SIZE,
  NBD_TRANSMISSION_FLAG_NAMES,
} from './nbd-wire.ts';

export { NBD_MODULE };
export const NBD_PRODUCT_NAME = 'NBD disk';

const log = componentLogger('bdev_nbd');

export const NBD_DEFAULT_TIMEOUTS: NbdTimeouts = { connectMs: 10_000, reconnectDelayMs: 1_000, fastIoFailMs: 30_000, ioTimeoutMs: 30_000 };

/** Where the server is, as the user gave it (host may be a name: it is resolved at create). */
export type NbdAddress = { socket: string } | { host: string; port: number };

export interface NbdBdevOptions {
  name: string;
  address: NbdAddress;
  exportName?: string;
  /** Default: 512, or the export's minimum block when that is larger. */
  blockSize?: number;
  uuid?: string;
  readOnly?: boolean;
  timeouts?: Partial<NbdTimeouts>;
}

/**
 * Connects, runs the handshake and disconnects cleanly (NBD_CMD_DISC): what the export is.
 * Rejects with an NbdError that says what went wrong.
 */
export function probeNbdExport(target: StreamTarget, exportName: string, timeoutMs: number): Promise<NbdExportInfo> {
  const where = describeTarget(target);
  return new Promise((resolve, reject) => {
    let hs: NbdHandshake;
    try {
      hs = new NbdHandshake(exportName);
    } catch (e) {
      reject(e);
      return;
    }
    let settled = false;
    const sock: Socket = target.kind === 'unix' ? connect({ path: target.path }) : connect({ host: target.host, port: target.port, noDelay: true });
    const finish = (err: Error | null, info?: NbdExportInfo): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) {
        sock.destroy();
        reject(err);
      } else resolve(info as NbdExportInfo);
    };
    const timer = setTimeout(() => finish(new NbdError('NBD_TIMEOUT', `${where}: no NBD handshake within ${timeoutMs} ms`)), timeoutMs);
    sock.on('data', (chunk: Buffer) => {
      if (settled) return;
      hs.feed(chunk);
      const out = hs.takeOutput();
      if (out) sock.write(out);
      const failed = hs.failed;
      if (failed) {
        sock.end();
        finish(new NbdError(failed.code, `${where}: ${failed.message}`));
      } else if (hs.done) {
        const disc = Buffer.alloc(NBD_REQUEST_SIZE);
        disc.writeUInt32BE(NBD_REQUEST_MAGIC, 0);
        disc.writeUInt16BE(NBD_CMD_DISC, 6);
        sock.end(disc);
        const info = hs.info;
        settled = true;
        clearTimeout(timer);
        resolve(info);
      }
    });
    sock.on('error', (e: NodeJS.ErrnoException) => finish(new NbdError('NBD_CONNECT_FAILED', `cannot connect to NBD server ${where}: ${e.code ?? e.message}`)));
    sock.on('close', () => {
      if (settled) return;
      hs.closed();
      const failed = hs.failed;
      finish(failed ? new NbdError(failed.code, `${where}: ${failed.message}`) : new NbdError('NBD_PROTOCOL', `${where}: connection closed`));
    });
  });
}

function checkTimeout(name: string, ms: number, min: number): number {
  if (!Number.isSafeInteger(ms) || ms < min || ms > 3_600_000) {
    throw new BdevError('BDEV_INVALID_PARAM', `${name} ${ms / 1000} s: whole milliseconds, ${min / 1000}..3600 s`);
  }
  return ms;
}

/** Resolves the address to the socket the channels connect to. */
export async function resolveNbdTarget(address: NbdAddress): Promise<StreamTarget> {
  if ('socket' in address) {
    if (typeof address.socket !== 'string' || address.socket === '') throw new BdevError('BDEV_INVALID_PARAM', 'socket: a Unix socket path');
    if (Buffer.byteLength(address.socket) > 107) throw new BdevError('BDEV_INVALID_PARAM', `socket path of ${Buffer.byteLength(address.socket)} bytes (max 107)`);
    return { kind: 'unix', path: address.socket };
  }
  const { host, port } = address;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new BdevError('BDEV_INVALID_PARAM', `port ${port}: 1..65535`);
  if (typeof host !== 'string' || host === '') throw new BdevError('BDEV_INVALID_PARAM', 'host: an IP address or a host name');
  if (isIP(host) !== 0) return { kind: 'tcp', host, port };
  try {
    const r = await lookup(host);
    return { kind: 'tcp', host: r.address, port };
  } catch (e) {
    throw new NbdError('NBD_CONNECT_FAILED', `cannot resolve host '${host}': ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

export class NbdBdev implements Bdev {
  readonly name: string;
  readonly aliases: string[] = [];
  readonly uuid: string;
  readonly productName = NBD_PRODUCT_NAME;
  readonly moduleName = NBD_MODULE;
  readonly blockSize: number;
  readonly numBlocks: number;
  readonly ioTypes: BdevIoTypes;
  readonly writeCache: boolean;
  readonly unmapReadsZero = false;
  readonly optimalIoBoundary = 0;
  claimedBy: string | null = null;
  readonly address: NbdAddress;
  readonly target: StreamTarget;
  readonly exportName: string;
  readonly info: NbdExportInfo;
  readonly readOnly: boolean;
  /** The user asked for read-only (save_config writes that, not the server's flag of the moment). */
  readonly readOnlyRequested: boolean;
  /** Whether block_size was given (save_config writes it back only then). */
  readonly blockSizeGiven: boolean;
  readonly timeouts: NbdTimeouts;
  readonly #control = new SharedArrayBuffer(CTL_WORDS * 4);
  readonly #ctl = new Int32Array(this.#control);

  constructor(opts: NbdBdevOptions, target: StreamTarget, info: NbdExportInfo) {
    checkBdevName(opts.name);
    this.name = opts.name;
    this.uuid = normalizeUuid(opts.uuid);
    this.address = opts.address;
    this.target = target;
    this.exportName = opts.exportName ?? '';
    this.info = info;
    this.blockSizeGiven = opts.blockSize !== undefined;
    const bs = opts.blockSize ?? Math.max(512, info.minBlock);
    checkBlockSize(bs);
    if (bs % info.minBlock !== 0) {
      throw new BdevError('BDEV_INVALID_PARAM', `block_size ${bs}: the export's minimum block is ${info.minBlock} bytes, and a block must be a multiple of it`);
    }
    if (info.sizeBytes < bs) throw new BdevError('BDEV_INVALID_PARAM', `export of ${info.sizeBytes} bytes is smaller than one ${bs}-byte block`);
    this.blockSize = bs;
    this.numBlocks = Math.floor(info.sizeBytes / bs);
    if (info.sizeBytes % bs !== 0) log.warn({ bdev: this.name, size: info.sizeBytes }, `export size is not a multiple of ${bs}: the last ${info.sizeBytes % bs} bytes are not used`);
    this.readOnlyRequested = opts.readOnly === true;
    this.readOnly = opts.readOnly === true || (info.flags & NBD_FLAG_READ_ONLY) !== 0;
    const t = { ...NBD_DEFAULT_TIMEOUTS, ...opts.timeouts };
    this.timeouts = {
      connectMs: checkTimeout('connect_timeout_sec', t.connectMs, 100),
      reconnectDelayMs: checkTimeout('reconnect_delay_sec', t.reconnectDelayMs, 0),
      fastIoFailMs: checkTimeout('fast_io_fail_timeout_sec', t.fastIoFailMs, 0),
      ioTimeoutMs: checkTimeout('io_timeout_sec', t.ioTimeoutMs, 0),
    };
    const f = info.flags;
    this.ioTypes = {
      read: true,
      write: !this.readOnly,
      flush: (f & NBD_FLAG_SEND_FLUSH) !== 0,
      unmap: !this.readOnly && (f & NBD_FLAG_SEND_TRIM) !== 0,
      // Sent as NBD_CMD_WRITE_ZEROES where the server has it, else as zero-filled writes.
      write_zeroes: !this.readOnly,
      reset: false,
    };
    this.writeCache = (f & NBD_FLAG_SEND_FLUSH) !== 0;
  }

  channelSpec(): NbdChannelSpec {
    return {
      module: NBD_MODULE,
      name: this.name,
      blockSize: this.blockSize,
      numBlocks: this.numBlocks,
      target: this.target,
      exportName: this.exportName,
      readOnly: this.readOnly,
      timeouts: { ...this.timeouts },
      control: this.#control,
    };
  }

  /** Connection state as the channels report it. */
  connectionState(): Record<string, unknown> {
    const c = this.#ctl;
    const open = Atomics.load(c, CTL_CHANNELS);
    const connected = Atomics.load(c, CTL_CONNECTED);
    const connects = Atomics.load(c, CTL_CONNECTS);
    const lastErrno = Atomics.load(c, CTL_LAST_ERRNO);
    // A channel connects at its first I/O, and again after a loss: at once while I/O waits,
    // else at the next I/O.
    let state: string;
    if (open === 0) state = 'unused';
    else if (connected === open) state = 'connected';
    else if (connects === 0 && lastErrno === 0) state = 'idle';
    else state = connected > 0 ? 'partially connected' : 'disconnected';
    return {
      state,
      channels: open,
      connected_channels: connected,
      connects,
      connection_losses: Atomics.load(c, CTL_LOSSES),
      resent_requests: Atomics.load(c, CTL_RESENT),
      failed_requests: Atomics.load(c, CTL_FAILED_IOS),
      last_error: lastErrno === 0 ? null : errnoName(lastErrno),
    };
  }

  driverSpecific(): Record<string, unknown> {
    const i = this.info;
    const addr = 'socket' in this.address ? { socket: this.address.socket } : { host: this.address.host, port: this.address.port };
    return {
      nbd: {
        ...addr,
        server: describeTarget(this.target),
        export_name: this.exportName,
        size_bytes: i.sizeBytes,
        read_only: this.readOnly,
        transmission_flags: NBD_TRANSMISSION_FLAG_NAMES.filter(([bit]) => (i.flags & bit) !== 0).map(([, n]) => n),
        multi_conn: (i.flags & NBD_FLAG_CAN_MULTI_CONN) !== 0,
        structured_replies: i.structuredReplies,
        // The server had no NBD_OPT_GO (or no fixed newstyle): no block-size constraints were learnt.
        export_name_handshake: i.exportNameFallback,
        block_size_constraints: { minimum: i.minBlock, preferred: i.preferredBlock, maximum_payload: i.maxPayload },
        timeouts: {
          connect_timeout_sec: this.timeouts.connectMs / 1000,
          reconnect_delay_sec: this.timeouts.reconnectDelayMs / 1000,
          fast_io_fail_timeout_sec: this.timeouts.fastIoFailMs / 1000,
          io_timeout_sec: this.timeouts.ioTimeoutMs / 1000,
        },
        ...this.connectionState(),
      },
    };
  }

  /** Channels close their own connections; nothing is held here. */
  destroy(): void {}
}

/** Resolves, probes the export and builds the bdev (not yet registered). */
export async function createNbdBdev(opts: NbdBdevOptions): Promise<NbdBdev> {
  checkBdevName(opts.name);
  const target = await resolveNbdTarget(opts.address);
  const connectMs = opts.timeouts?.connectMs ?? NBD_DEFAULT_TIMEOUTS.connectMs;
  const info = await probeNbdExport(target, opts.exportName ?? '', connectMs);
  const bdev = new NbdBdev(opts, target, info);
  log.info(
    { bdev: bdev.name, server: describeTarget(target), export: bdev.exportName, size: info.sizeBytes, flags: info.flags, structured: info.structuredReplies },
    'NBD export attached',
  );
  return bdev;
}
