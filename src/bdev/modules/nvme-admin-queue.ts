// The admin queue of an NVMe/TCP controller, on the main thread (node:net): connection
// (ICReq/ICResp, Fabrics Connect on queue 0), properties, Identify, Set Features, Keep Alive.
// Commands are few and slow-path, so each one is a promise; the PDUs are the I/O queues' own.
import { connect, type Socket } from 'node:net';
import { crc32c } from '../../blob/crc32c.ts';
import { describeTarget, type StreamTarget } from '../../sys/stream-socket.ts';
import { NvmeError } from './nvme-error.ts';
import {
  CAPSULE_CMD_HLEN,
  CH_SIZE,
  dataOffset,
  DIGEST_SIZE,
  encodeCapsuleHeader,
  encodeIcReq,
  fesName,
  headerDigest,
  ICREQ_SIZE,
  NvmeTcpPduParser,
  type IcRespInfo,
  type NvmeTcpPduHandler,
} from './nvme-tcp-pdu.ts';
import {
  ADMIN_IDENTIFY,
  ADMIN_KEEP_ALIVE,
  ADMIN_SET_FEATURES,
  CQE_DW0,
  CQE_DW1,
  CQE_CID,
  CQE_STATUS,
  FABRICS_OPC,
  FCTYPE_CONNECT,
  FCTYPE_PROPERTY_GET,
  FCTYPE_PROPERTY_SET,
  nvmeStatusName,
  SGL_DATA_BLOCK_OFFSET,
  SGL_TRANSPORT_DATA_BLOCK,
  SQE_CDW10,
  SQE_CDW11,
  SQE_CID,
  SQE_FCTYPE,
  SQE_FLAGS,
  SQE_FLAGS_SGL,
  SQE_NSID,
  SQE_OPC,
  SQE_SGL_LEN,
  SQE_SGL_TYPE,
} from './nvme-spec.ts';
import { encodeConnectData, CONNECT_DATA_SIZE } from './nvme-connect.ts';

export const ADMIN_QUEUE_SIZE = 32;

export interface AdminConnectOptions {
  target: StreamTarget;
  subnqn: string;
  hostnqn: string;
  hostid: Uint8Array;
  /** Keep Alive Timeout given in Connect (ms, 0 = none). */
  katoMs: number;
  headerDigest: boolean;
  dataDigest: boolean;
  timeoutMs: number;
}

export interface AdminCompletion {
  status: number;
  dw0: number;
  dw1: number;
  data: Uint8Array | null;
}

interface Pending {
  resolve: (c: AdminCompletion) => void;
  reject: (e: Error) => void;
  data: Uint8Array | null;
  received: number;
  timer: NodeJS.Timeout;
  what: string;
}

export class NvmeAdminQueue implements NvmeTcpPduHandler {
  readonly where: string;
  cntlid = 0;
  readonly #sock: Socket;
  readonly #parser: NvmeTcpPduParser;
  readonly #pending = new Map<number, Pending>();
  #nextCid = 0;
  #ic: ((info: IcRespInfo) => void) | null = null;
  #c2h: Pending | null = null;
  #c2hOffset = 0;
  #hdgst = false;
  #cpda = 0;
  #ddgst = false;
  #closed = false;
  #onLost: (why: string) => void = () => {};
  readonly #timeoutMs: number;

  private constructor(sock: Socket, where: string, timeoutMs: number) {
    this.#sock = sock;
    this.where = where;
    this.#timeoutMs = timeoutMs;
    this.#parser = new NvmeTcpPduParser(this);
    sock.on('data', (chunk: Buffer) => {
      if (!this.#parser.feed(chunk, 0, chunk.length)) this.#lose(`protocol error on the admin queue: ${String(this.#parser.error)}`);
    });
    sock.on('error', (e: NodeJS.ErrnoException) => this.#lose(`admin queue: ${e.code ?? e.message}`));
    sock.on('close', () => this.#lose('the controller closed the admin queue connection'));
  }

  /** Connects, negotiates the PDU options and runs Fabrics Connect on queue 0. */
  static async open(o: AdminConnectOptions): Promise<NvmeAdminQueue> {
    const where = describeTarget(o.target);
    const sock = await new Promise<Socket>((resolve, reject) => {
      const s = o.target.kind === 'unix' ? connect({ path: o.target.path }) : connect({ host: o.target.host, port: o.target.port, noDelay: true });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new NvmeError('NVME_CONNECT_FAILED', `${where}: no connection within ${o.timeoutMs} ms`, 110));
      }, o.timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        resolve(s);
      });
      s.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new NvmeError('NVME_CONNECT_FAILED', `cannot connect to NVMe/TCP target ${where}: ${e.code ?? e.message}`, errnoOf(e)));
      });
    });
    const q = new NvmeAdminQueue(sock, where, o.timeoutMs);
    try {
      await q.#initialize(o);
    } catch (e) {
      q.close();
      throw e;
    }
    return q;
  }

  onLost(cb: (why: string) => void): void {
    this.#onLost = cb;
  }

  get closed(): boolean {
    return this.#closed;
  }

  async #initialize(o: AdminConnectOptions): Promise<void> {
    const ic = await new Promise<IcRespInfo>((resolve, reject) => {
      const timer = setTimeout(() => reject(new NvmeError('NVME_CONNECT_FAILED', `${this.where}: no ICResp within ${this.#timeoutMs} ms`, 110)), this.#timeoutMs);
      this.#ic = (info) => {
        clearTimeout(timer);
        resolve(info);
      };
      this.#rejectInit = (e) => {
        clearTimeout(timer);
        reject(e);
      };
      const b = Buffer.alloc(ICREQ_SIZE);
      encodeIcReq(new DataView(b.buffer, b.byteOffset, b.length), 0, o.headerDigest, o.dataDigest);
      this.#sock.write(b);
    });
    this.#rejectInit = null;
    if (ic.pfv !== 0) throw new NvmeError('NVME_PROTOCOL', `${this.where}: ICResp with PDU format version ${ic.pfv}`, 71);
    if (ic.headerDigest && !o.headerDigest) throw new NvmeError('NVME_PROTOCOL', `${this.where}: the controller enabled header digests that were not asked for`, 71);
    if (ic.dataDigest && !o.dataDigest) throw new NvmeError('NVME_PROTOCOL', `${this.where}: the controller enabled data digests that were not asked for`, 71);
    this.#hdgst = ic.headerDigest;
    this.#cpda = ic.cpda;
    this.#ddgst = ic.dataDigest;
    this.#parser.headerDigest = ic.headerDigest;
    this.#parser.dataDigest = ic.dataDigest;
    const data = encodeConnectData(o.hostid, 0xffff, o.subnqn, o.hostnqn);
    const c = await this.command('Connect', (dv) => {
      dv.setUint8(SQE_OPC, FABRICS_OPC);
      dv.setUint8(SQE_FCTYPE, FCTYPE_CONNECT);
      dv.setUint16(42, 0, true); // QID
      dv.setUint16(44, ADMIN_QUEUE_SIZE - 1, true); // SQSIZE, 0-based
      dv.setUint32(48, o.katoMs, true);
    }, data, 0);
    if (c.status !== 0) {
      throw new NvmeError('NVME_CONNECT_REFUSED', `${this.where}: Fabrics Connect to ${o.subnqn} as ${o.hostnqn} failed: ${nvmeStatusName(c.status)}${connectDetail(c)}`, 111);
    }
    this.cntlid = c.dw0 & 0xffff;
  }

  #rejectInit: ((e: Error) => void) | null = null;

  /**
   * Runs one admin command. `build` fills the SQE (opcode, nsid, cdw10..); the CID, PSDT and SGL
   * are set here: `dataOut` goes in the capsule, or `dataIn` bytes come back by C2HData.
   */
  command(what: string, build: (sqe: DataView) => void, dataOut: Uint8Array | null, dataIn: number): Promise<AdminCompletion> {
    if (this.#closed) return Promise.reject(new NvmeError('NVME_NOT_CONNECTED', `${this.where}: the admin queue is closed`, 107));
    let cid = this.#nextCid;
    while (this.#pending.has(cid)) cid = (cid + 1) & 0xffff;
    this.#nextCid = (cid + 1) & 0xffff;
    const hd = this.#hdgst ? DIGEST_SIZE : 0;
    const outLen = dataOut?.length ?? 0;
    const dd = outLen > 0 && this.#ddgst ? DIGEST_SIZE : 0;
    const dataAt = outLen > 0 ? dataOffset(CAPSULE_CMD_HLEN + hd, this.#cpda) : CAPSULE_CMD_HLEN + hd;
    const pdu = Buffer.alloc(dataAt + outLen + dd);
    const dv = new DataView(pdu.buffer, pdu.byteOffset, pdu.length);
    encodeCapsuleHeader(dv, 0, outLen, this.#hdgst, this.#ddgst, dataAt);
    const sqe = new DataView(pdu.buffer, pdu.byteOffset + CH_SIZE, 64);
    build(sqe);
    sqe.setUint8(SQE_FLAGS, SQE_FLAGS_SGL);
    sqe.setUint16(SQE_CID, cid, true);
    if (outLen > 0) {
      sqe.setUint32(SQE_SGL_LEN, outLen, true);
      sqe.setUint8(SQE_SGL_TYPE, SGL_DATA_BLOCK_OFFSET);
    } else if (dataIn > 0) {
      sqe.setUint32(SQE_SGL_LEN, dataIn, true);
      sqe.setUint8(SQE_SGL_TYPE, SGL_TRANSPORT_DATA_BLOCK);
    }
    if (hd > 0) dv.setUint32(CAPSULE_CMD_HLEN, headerDigest(pdu, 0, CAPSULE_CMD_HLEN), true);
    if (outLen > 0) {
      pdu.set(dataOut as Uint8Array, dataAt);
      if (dd > 0) dv.setUint32(dataAt + outLen, crc32c(dataOut as Uint8Array, 0, outLen), true);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(cid);
        reject(new NvmeError('NVME_TIMEOUT', `${this.where}: ${what} not answered within ${this.#timeoutMs} ms`, 110));
        this.#lose(`${what} timed out`);
      }, this.#timeoutMs);
      this.#pending.set(cid, { resolve, reject, data: dataIn > 0 ? new Uint8Array(dataIn) : null, received: 0, timer, what });
      this.#sock.write(pdu);
    });
  }

  async propertyGet(offset: number, eightBytes: boolean): Promise<bigint> {
    const c = await this.command(`Property Get 0x${offset.toString(16)}`, (dv) => {
      dv.setUint8(SQE_OPC, FABRICS_OPC);
      dv.setUint8(SQE_FCTYPE, FCTYPE_PROPERTY_GET);
      dv.setUint8(SQE_CDW10, eightBytes ? 1 : 0);
      dv.setUint32(SQE_CDW11, offset, true);
    }, null, 0);
    this.#check(c, `Property Get 0x${offset.toString(16)}`);
    return BigInt(c.dw0 >>> 0) | (eightBytes ? BigInt(c.dw1 >>> 0) << 32n : 0n);
  }

  async propertySet(offset: number, value: number): Promise<void> {
    const c = await this.command(`Property Set 0x${offset.toString(16)}`, (dv) => {
      dv.setUint8(SQE_OPC, FABRICS_OPC);
      dv.setUint8(SQE_FCTYPE, FCTYPE_PROPERTY_SET);
      dv.setUint8(SQE_CDW10, 0);
      dv.setUint32(SQE_CDW11, offset, true);
      dv.setUint32(48, value >>> 0, true);
    }, null, 0);
    this.#check(c, `Property Set 0x${offset.toString(16)}`);
  }

  async identify(cns: number, nsid: number): Promise<Uint8Array> {
    const c = await this.command(`Identify CNS ${cns}`, (dv) => {
      dv.setUint8(SQE_OPC, ADMIN_IDENTIFY);
      dv.setUint32(SQE_NSID, nsid, true);
      dv.setUint32(SQE_CDW10, cns, true);
    }, null, 4096);
    this.#check(c, `Identify CNS ${cns} nsid ${nsid}`);
    return c.data as Uint8Array;
  }

  async setFeatures(fid: number, cdw11: number): Promise<number> {
    const c = await this.command(`Set Features 0x${fid.toString(16)}`, (dv) => {
      dv.setUint8(SQE_OPC, ADMIN_SET_FEATURES);
      dv.setUint32(SQE_CDW10, fid, true);
      dv.setUint32(SQE_CDW11, cdw11 >>> 0, true);
    }, null, 0);
    this.#check(c, `Set Features 0x${fid.toString(16)}`);
    return c.dw0 >>> 0;
  }

  async keepAlive(): Promise<void> {
    const c = await this.command('Keep Alive', (dv) => dv.setUint8(SQE_OPC, ADMIN_KEEP_ALIVE), null, 0);
    this.#check(c, 'Keep Alive');
  }

  #check(c: AdminCompletion, what: string): void {
    if (c.status !== 0) throw new NvmeError('NVME_COMMAND_FAILED', `${this.where}: ${what} failed: ${nvmeStatusName(c.status)}`, 5);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#sock.destroy();
    this.#failPending(new NvmeError('NVME_NOT_CONNECTED', `${this.where}: the admin queue was closed`, 107));
  }

  #failPending(e: Error): void {
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(e);
    }
    this.#pending.clear();
    this.#rejectInit?.(e);
  }

  #lose(why: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#sock.destroy();
    this.#failPending(new NvmeError('NVME_CONNECTION_LOST', `${this.where}: ${why}`, 104));
    this.#onLost(why);
  }

  // --- NvmeTcpPduHandler ------------------------------------------------------------------

  icResp(info: IcRespInfo): void {
    const cb = this.#ic;
    this.#ic = null;
    if (cb) cb(info);
    else this.#lose('unexpected ICResp');
  }

  capsuleResp(b: Uint8Array, at: number): void {
    const dv = new DataView(b.buffer, b.byteOffset + at, 16);
    const cid = dv.getUint16(CQE_CID, true);
    const p = this.#pending.get(cid);
    if (!p) return this.#lose(`completion for command ${cid}, which is not in flight`);
    this.#pending.delete(cid);
    clearTimeout(p.timer);
    const status = dv.getUint16(CQE_STATUS, true) & 0xfffe;
    p.resolve({ status, dw0: dv.getUint32(CQE_DW0, true), dw1: dv.getUint32(CQE_DW1, true), data: p.data });
  }

  c2hStart(cid: number, dataOffset: number, dataLength: number, _last: boolean, success: boolean): boolean {
    const p = this.#pending.get(cid);
    if (!p || !p.data || dataOffset + dataLength > p.data.length) return false;
    this.#c2h = p;
    this.#c2hOffset = dataOffset;
    if (success) {
      // Completed by the data PDU itself: resolved at its end.
      this.#c2hSuccessCid = cid;
    }
    return true;
  }

  #c2hSuccessCid = -1;

  c2hData(b: Uint8Array, at: number, len: number): void {
    const p = this.#c2h as Pending;
    (p.data as Uint8Array).set(b.subarray(at, at + len), this.#c2hOffset);
    this.#c2hOffset += len;
    p.received += len;
  }

  c2hEnd(): void {
    const cid = this.#c2hSuccessCid;
    this.#c2h = null;
    if (cid < 0) return;
    this.#c2hSuccessCid = -1;
    const p = this.#pending.get(cid);
    if (!p) return;
    this.#pending.delete(cid);
    clearTimeout(p.timer);
    p.resolve({ status: 0, dw0: 0, dw1: 0, data: p.data });
  }

  r2t(cid: number): void {
    this.#lose(`R2T for admin command ${cid}: admin data always goes in the capsule`);
  }

  termReq(fes: number): void {
    this.#lose(`the controller ended the admin connection: ${fesName(fes)}`);
  }
}

function errnoOf(e: NodeJS.ErrnoException): number {
  const codes: Record<string, number> = { ECONNREFUSED: 111, ENOENT: 2, ETIMEDOUT: 110, EHOSTUNREACH: 113, ENETUNREACH: 101, ECONNRESET: 104 };
  return codes[e.code ?? ''] ?? 5;
}

/** Connect's invalid-parameter completion names the bad field (dw0: IATTR, IPO). */
function connectDetail(c: AdminCompletion): string {
  const sc = (c.status >> 1) & 0xff;
  const sct = (c.status >> 9) & 7;
  if (sct !== 1 || sc !== 0x82) return '';
  const ipo = c.dw0 >>> 16;
  const inData = (c.dw0 & 1) !== 0;
  const field = inData ? ({ 16: 'cntlid', 256: 'subnqn', 512: 'hostnqn' } as Record<number, string>)[ipo] ?? `data byte ${ipo}` : `command byte ${ipo}`;
  return ` (invalid ${field})`;
}

export { CONNECT_DATA_SIZE };
