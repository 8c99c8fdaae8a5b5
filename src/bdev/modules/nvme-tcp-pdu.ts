// NVMe/TCP PDUs (NVMe/TCP Transport 1.0): the common header, the layouts the host sends
// (ICReq, CapsuleCmd, H2CData, H2CTermReq) and a streaming parser of what the controller sends
// (ICResp, CapsuleResp, C2HData, R2T, C2HTermReq) that hands data to its handler in place, so a
// queue allocates nothing per PDU. Shared by the admin queue (main thread) and I/O queues (reactors).
import { crc32c, crc32cUpdate as crc32cUpdateRaw } from '../../blob/crc32c.ts';
import { CQE_SIZE, SQE_SIZE } from './nvme-spec.ts';

export const PDU_ICREQ = 0x00;
export const PDU_ICRESP = 0x01;
export const PDU_H2C_TERM_REQ = 0x02;
export const PDU_C2H_TERM_REQ = 0x03;
export const PDU_CAPSULE_CMD = 0x04;
export const PDU_CAPSULE_RESP = 0x05;
export const PDU_H2C_DATA = 0x06;
export const PDU_C2H_DATA = 0x07;
export const PDU_R2T = 0x09;

export const FLAG_HDGST = 0x01;
export const FLAG_DDGST = 0x02;
/** H2CData / C2HData: the last PDU of the transfer. */
export const FLAG_LAST_PDU = 0x04;
/** C2HData: the command succeeded; no CapsuleResp follows. */
export const FLAG_SUCCESS = 0x08;

export const CH_SIZE = 8;
export const ICREQ_SIZE = 128;
export const ICRESP_SIZE = 128;
export const CAPSULE_CMD_HLEN = CH_SIZE + SQE_SIZE; // 72
export const CAPSULE_RESP_HLEN = CH_SIZE + CQE_SIZE; // 24
export const DATA_HLEN = 24; // H2CData, C2HData, R2T
export const TERM_HLEN = 24;
export const DIGEST_SIZE = 4;

/** ICReq dgst bits. */
export const DGST_HEADER = 1;
export const DGST_DATA = 2;

/** Fatal error status of a TermReq (FES). */
export const FES_INVALID_HEADER_FIELD = 0x01;
export const FES_PDU_SEQUENCE_ERROR = 0x02;
export const FES_HEADER_DIGEST_ERROR = 0x03;
export const FES_DATA_TRANSFER_OUT_OF_RANGE = 0x04;

const FES_NAMES: Record<number, string> = {
  1: 'invalid PDU header field',
  2: 'PDU sequence error',
  3: 'header digest error',
  4: 'data transfer out of range',
  5: 'data transfer limit exceeded',
  6: 'unsupported parameter',
};

export function fesName(fes: number): string {
  return FES_NAMES[fes] ?? `fatal error status ${fes}`;
}

/** Writes an ICReq at `at`: PFV 0, HPDA 0 (data right after the header), MAXR2T 0 (one R2T at a time per command). */
export function encodeIcReq(dv: DataView, at: number, headerDigest: boolean, dataDigest: boolean): number {
  for (let i = 0; i < ICREQ_SIZE; i += 4) dv.setUint32(at + i, 0);
  dv.setUint8(at, PDU_ICREQ);
  dv.setUint8(at + 2, ICREQ_SIZE);
  dv.setUint32(at + 4, ICREQ_SIZE, true);
  dv.setUint8(at + 11, (headerDigest ? DGST_HEADER : 0) | (dataDigest ? DGST_DATA : 0));
  return ICREQ_SIZE;
}

/**
 * Writes a CapsuleCmd's common header at `at` (the SQE follows at at+8 and is the caller's to fill):
 * `inCapsule` data bytes follow at `pdo` (the header, its digest and padding to the controller's
 * data alignment before it), then the data digest.
 */
export function encodeCapsuleHeader(dv: DataView, at: number, inCapsule: number, hdgst: boolean, ddgst: boolean, pdo = 0): void {
  const hd = hdgst ? DIGEST_SIZE : 0;
  const dataAt = inCapsule > 0 ? Math.max(pdo, CAPSULE_CMD_HLEN + hd) : 0;
  const plen = inCapsule > 0 ? dataAt + inCapsule + (ddgst ? DIGEST_SIZE : 0) : CAPSULE_CMD_HLEN + hd;
  dv.setUint8(at, PDU_CAPSULE_CMD);
  dv.setUint8(at + 1, (hdgst ? FLAG_HDGST : 0) | (inCapsule > 0 && ddgst ? FLAG_DDGST : 0));
  dv.setUint8(at + 2, CAPSULE_CMD_HLEN);
  dv.setUint8(at + 3, dataAt);
  dv.setUint32(at + 4, plen, true);
}

/** Where data starts in a host PDU whose header (with digest) is `headerBytes` long, for CPDA `cpda`. */
export function dataOffset(headerBytes: number, cpda: number): number {
  const align = (cpda + 1) * 4;
  return Math.ceil(headerBytes / align) * align;
}

/** Writes an H2CData header at `at` for `len` bytes at `offset` of the command's data, the data at `pdo`. */
export function encodeH2cDataHeader(dv: DataView, at: number, cid: number, ttag: number, offset: number, len: number, last: boolean, hdgst: boolean, ddgst: boolean, pdo: number): void {
  dv.setUint8(at, PDU_H2C_DATA);
  dv.setUint8(at + 1, (hdgst ? FLAG_HDGST : 0) | (ddgst ? FLAG_DDGST : 0) | (last ? FLAG_LAST_PDU : 0));
  dv.setUint8(at + 2, DATA_HLEN);
  dv.setUint8(at + 3, pdo);
  dv.setUint32(at + 4, pdo + len + (ddgst ? DIGEST_SIZE : 0), true);
  dv.setUint16(at + 8, cid, true);
  dv.setUint16(at + 10, ttag, true);
  dv.setUint32(at + 12, offset, true);
  dv.setUint32(at + 16, len, true);
  dv.setUint32(at + 20, 0);
}

/** Writes an H2CTermReq (no data) at `at`: the host ends the connection and says why. */
export function encodeH2cTermReq(dv: DataView, at: number, fes: number): number {
  for (let i = 0; i < TERM_HLEN; i += 4) dv.setUint32(at + i, 0);
  dv.setUint8(at, PDU_H2C_TERM_REQ);
  dv.setUint8(at + 2, TERM_HLEN);
  dv.setUint32(at + 4, TERM_HLEN, true);
  dv.setUint16(at + 8, fes, true);
  return TERM_HLEN;
}

/** Header digest of header bytes b[at, at+hlen), stored little-endian after them. */
export function headerDigest(b: Uint8Array, at: number, hlen: number): number {
  return crc32c(b, at, at + hlen);
}

export interface IcRespInfo {
  pfv: number;
  /** Controller PDU data alignment: H2CData data at multiples of (cpda + 1) x 4 bytes. */
  cpda: number;
  headerDigest: boolean;
  dataDigest: boolean;
  /** Largest H2CData payload the controller takes. */
  maxH2cData: number;
}

/** Receives what the parser finds; the byte ranges are valid only during the call. */
export interface NvmeTcpPduHandler {
  icResp(info: IcRespInfo): void;
  /** A CapsuleResp: its CQE at b[at, at+16). */
  capsuleResp(b: Uint8Array, at: number): void;
  /** The start of a C2HData PDU; returns false when the command is unknown or the range is out of its data (a protocol error). */
  c2hStart(cid: number, dataOffset: number, dataLength: number, last: boolean, success: boolean): boolean;
  /** Next piece of the current C2HData PDU's data, in order. */
  c2hData(b: Uint8Array, at: number, len: number): void;
  /** The end of the current C2HData PDU (after its data digest was checked). */
  c2hEnd(): void;
  r2t(cid: number, ttag: number, offset: number, length: number): void;
  termReq(fes: number, fei: number): void;
}

const S_HEADER = 0;
const S_PAD = 1;
const S_DATA = 2;
const S_DDGST = 3;
const S_SKIP = 4;
const MAX_HEADER = 128 + DIGEST_SIZE;

/**
 * Parses the controller-to-host byte stream. feed() returns false on a protocol error (error says
 * which); the connection is then unusable.
 */
export class NvmeTcpPduParser {
  readonly #h: NvmeTcpPduHandler;
  readonly #hdr = new Uint8Array(MAX_HEADER);
  readonly #hdv = new DataView(this.#hdr.buffer);
  #state = S_HEADER;
  #have = 0;
  /** Header bytes expected (known after the common header). */
  #need = CH_SIZE;
  #left = 0;
  #pad = 0;
  #ddgst = false;
  #crc = 0;
  readonly #dg = new Uint8Array(DIGEST_SIZE);
  #dgHave = 0;
  /** Negotiated digests (set after ICResp). */
  headerDigest = false;
  dataDigest = false;
  error: string | null = null;
  pdus = 0;

  constructor(handler: NvmeTcpPduHandler) {
    this.#h = handler;
  }

  reset(): void {
    this.#state = S_HEADER;
    this.#have = 0;
    this.#need = CH_SIZE;
    this.headerDigest = false;
    this.dataDigest = false;
    this.error = null;
    this.#dgHave = 0;
  }

  #fail(why: string): boolean {
    this.error = why;
    return false;
  }

  feed(b: Uint8Array, off: number, len: number): boolean {
    if (this.error !== null) return false;
    const end = off + len;
    let at = off;
    while (at < end) {
      switch (this.#state) {
        case S_HEADER: {
          const n = Math.min(this.#need - this.#have, end - at);
          // A byte loop, not set(subarray()): a header is at most 132 bytes, and a subarray is an object per PDU.
          const hdr = this.#hdr;
          const h0 = this.#have;
          for (let k = 0; k < n; k++) hdr[h0 + k] = b[at + k];
          this.#have += n;
          at += n;
          if (this.#have < this.#need) break;
          if (this.#need === CH_SIZE && !this.#commonHeader()) return false;
          if (this.#have === this.#need && this.#need > CH_SIZE && !this.#fullHeader()) return false;
          break;
        }
        case S_PAD:
        case S_SKIP: {
          const n = Math.min(this.#pad, end - at);
          this.#pad -= n;
          at += n;
          if (this.#pad === 0) {
            if (this.#state === S_SKIP) this.#nextPdu();
            else this.#state = this.#left > 0 ? S_DATA : this.#afterData();
          }
          break;
        }
        case S_DATA: {
          const n = Math.min(this.#left, end - at);
          if (this.#ddgst) this.#crc = crc32cUpdateRaw(this.#crc, b, at, at + n);
          this.#h.c2hData(b, at, n);
          this.#left -= n;
          at += n;
          if (this.#left === 0) this.#state = this.#afterData();
          if (this.#state === S_HEADER && !this.#endData()) return false;
          break;
        }
        case S_DDGST: {
          const n = Math.min(DIGEST_SIZE - this.#dgHave, end - at);
          for (let k = 0; k < n; k++) this.#dg[this.#dgHave + k] = b[at + k];
          this.#dgHave += n;
          at += n;
          if (this.#dgHave < DIGEST_SIZE) break;
          this.#dgHave = 0;
          const got = (this.#dg[0] | (this.#dg[1] << 8) | (this.#dg[2] << 16) | (this.#dg[3] << 24)) >>> 0;
          const want = (this.#crc ^ 0xffffffff) >>> 0;
          if (got !== want) return this.#fail(`data digest mismatch (0x${got.toString(16)}, computed 0x${want.toString(16)})`);
          this.#state = S_HEADER;
          if (!this.#endData()) return false;
          break;
        }
      }
      if (this.error !== null) return false;
    }
    return true;
  }

  #afterData(): number {
    return this.#ddgst ? S_DDGST : S_HEADER;
  }

  #endData(): boolean {
    this.#h.c2hEnd();
    this.#nextPdu();
    return this.error === null;
  }

  #nextPdu(): void {
    this.#state = S_HEADER;
    this.#have = 0;
    this.#need = CH_SIZE;
    this.pdus++;
  }

  #commonHeader(): boolean {
    const type = this.#hdr[0];
    const hlen = this.#hdr[2];
    const plen = this.#hdv.getUint32(4, true);
    let want: number;
    switch (type) {
      case PDU_ICRESP:
        want = ICRESP_SIZE;
        break;
      case PDU_CAPSULE_RESP:
        want = CAPSULE_RESP_HLEN;
        break;
      case PDU_C2H_DATA:
      case PDU_R2T:
        want = DATA_HLEN;
        break;
      case PDU_C2H_TERM_REQ:
        want = TERM_HLEN;
        break;
      default:
        return this.#fail(`unexpected PDU type 0x${type.toString(16)}`);
    }
    if (hlen !== want) return this.#fail(`PDU type 0x${type.toString(16)} with header length ${hlen} (expected ${want})`);
    const hd = type !== PDU_ICRESP && type !== PDU_C2H_TERM_REQ && this.headerDigest ? DIGEST_SIZE : 0;
    if (plen < hlen + hd) return this.#fail(`PDU type 0x${type.toString(16)} of ${plen} bytes, shorter than its header`);
    this.#need = hlen + hd;
    return true;
  }

  #fullHeader(): boolean {
    const h = this.#hdr;
    const dv = this.#hdv;
    const type = h[0];
    const flags = h[1];
    const hlen = h[2];
    const pdo = h[3];
    const plen = dv.getUint32(4, true);
    if (this.#need > hlen) {
      const got = dv.getUint32(hlen, true);
      const want = headerDigest(h, 0, hlen);
      if (got !== want) return this.#fail(`header digest mismatch on PDU type 0x${type.toString(16)}`);
    }
    const headerEnd = this.#need;
    switch (type) {
      case PDU_ICRESP: {
        if (plen !== ICRESP_SIZE) return this.#fail(`ICResp of ${plen} bytes`);
        const dgst = h[11];
        this.#h.icResp({ pfv: dv.getUint16(8, true), cpda: h[10], headerDigest: (dgst & DGST_HEADER) !== 0, dataDigest: (dgst & DGST_DATA) !== 0, maxH2cData: dv.getUint32(12, true) });
        this.#nextPdu();
        return this.error === null;
      }
      case PDU_CAPSULE_RESP:
        if (plen !== headerEnd) return this.#fail(`CapsuleResp of ${plen} bytes`);
        this.#h.capsuleResp(h, CH_SIZE);
        this.#nextPdu();
        return this.error === null;
      case PDU_R2T:
        if (plen !== headerEnd) return this.#fail(`R2T of ${plen} bytes`);
        this.#h.r2t(dv.getUint16(8, true), dv.getUint16(10, true), dv.getUint32(12, true), dv.getUint32(16, true));
        this.#nextPdu();
        return this.error === null;
      case PDU_C2H_TERM_REQ: {
        this.#h.termReq(dv.getUint16(8, true), dv.getUint32(10, true));
        // The rest (the offending header) is skipped; the connection ends anyway.
        this.#pad = plen - headerEnd;
        this.#state = S_SKIP;
        if (this.#pad === 0) this.#nextPdu();
        return this.error === null;
      }
      default: {
        // C2HData.
        const cid = dv.getUint16(8, true);
        const datao = dv.getUint32(12, true);
        const datal = dv.getUint32(16, true);
        this.#ddgst = (flags & FLAG_DDGST) !== 0;
        if (this.#ddgst !== this.dataDigest) return this.#fail('C2HData data digest flag differs from what was negotiated');
        const dd = this.#ddgst ? DIGEST_SIZE : 0;
        if (datal === 0 || pdo < headerEnd || plen !== pdo + datal + dd) return this.#fail(`C2HData with pdo ${pdo}, plen ${plen}, datal ${datal}`);
        if ((flags & FLAG_SUCCESS) !== 0 && (flags & FLAG_LAST_PDU) === 0) return this.#fail('C2HData with SUCCESS but not LAST_PDU');
        if (!this.#h.c2hStart(cid, datao, datal, (flags & FLAG_LAST_PDU) !== 0, (flags & FLAG_SUCCESS) !== 0)) {
          return this.#fail(`C2HData for command ${cid} at ${datao}+${datal} outside any read in flight`);
        }
        this.#left = datal;
        this.#crc = 0xffffffff;
        this.#pad = pdo - headerEnd;
        this.#state = this.#pad > 0 ? S_PAD : S_DATA;
        return this.error === null;
      }
    }
  }
}

