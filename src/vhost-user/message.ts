// vhost-user message codec: the 12-byte header, per-request payload size rules, and every payload
// struct of the spec. All numbers are host byte order; this project runs on little-endian hosts
// (x86-64, aarch64), so little-endian is used throughout.
import {
  VHOST_MEMORY_MAX_NREGIONS,
  VHOST_USER_ADD_MEM_REG,
  VHOST_USER_CONFIG_HDR_SIZE,
  VHOST_USER_GET_CONFIG,
  VHOST_USER_GET_FEATURES,
  VHOST_USER_GET_INFLIGHT_FD,
  VHOST_USER_GET_MAX_MEM_SLOTS,
  VHOST_USER_GET_PROTOCOL_FEATURES,
  VHOST_USER_GET_QUEUE_NUM,
  VHOST_USER_GET_STATUS,
  VHOST_USER_GET_VRING_BASE,
  VHOST_USER_HDR_SIZE,
  VHOST_USER_MAX_CONFIG_SIZE,
  VHOST_USER_MAX_PAYLOAD_SIZE,
  VHOST_USER_NEED_REPLY_MASK,
  VHOST_USER_REM_MEM_REG,
  VHOST_USER_REPLY_FLAGS,
  VHOST_USER_REPLY_MASK,
  VHOST_USER_RESET_DEVICE,
  VHOST_USER_RESET_OWNER,
  VHOST_USER_SET_BACKEND_REQ_FD,
  VHOST_USER_SET_CONFIG,
  VHOST_USER_SET_FEATURES,
  VHOST_USER_SET_INFLIGHT_FD,
  VHOST_USER_SET_LOG_BASE,
  VHOST_USER_SET_LOG_FD,
  VHOST_USER_SET_MEM_TABLE,
  VHOST_USER_SET_OWNER,
  VHOST_USER_SET_PROTOCOL_FEATURES,
  VHOST_USER_SET_STATUS,
  VHOST_USER_SET_VRING_ADDR,
  VHOST_USER_SET_VRING_BASE,
  VHOST_USER_SET_VRING_CALL,
  VHOST_USER_SET_VRING_ENABLE,
  VHOST_USER_SET_VRING_ERR,
  VHOST_USER_SET_VRING_KICK,
  VHOST_USER_SET_VRING_NUM,
  VHOST_USER_VERSION,
  VHOST_USER_VERSION_MASK,
  VHOST_USER_VRING_IDX_MASK,
  VHOST_USER_VRING_NOFD_MASK,
  requestName,
} from './message-types.ts';
import { VhostUserProtocolError } from './protocol-error.ts';

const LE = true;

export interface MessageHeader {
  request: number;
  flags: number;
  size: number;
}

/** One received message. `payload` is a view that stays valid only until the next read. */
export interface VhostUserMessage extends MessageHeader {
  payload: Uint8Array;
  /** Fds that arrived with any part of the message; whoever handles the message closes them. */
  fds: number[];
}

export interface VringState {
  index: number;
  num: number;
}

export interface VringAddr {
  index: number;
  flags: number;
  descUserAddr: number;
  usedUserAddr: number;
  availUserAddr: number;
  logGuestAddr: number;
}

export interface VringFile {
  index: number;
  /** Bit 8: no fd travels with the message (polling / no interrupt). */
  noFd: boolean;
}

export interface MemoryRegionDesc {
  guestPhysAddr: number;
  size: number;
  userAddr: number;
  mmapOffset: number;
}

export interface ConfigSpace {
  offset: number;
  size: number;
  flags: number;
  data: Uint8Array;
}

export interface InflightDesc {
  mmapSize: number;
  mmapOffset: number;
  numQueues: number;
  queueSize: number;
}

export interface LogDesc {
  size: number;
  offset: number;
}

export const VRING_STATE_SIZE = 8;
export const VRING_ADDR_SIZE = 40;
export const MEMORY_REGION_SIZE = 32;
export const MEM_TABLE_HDR_SIZE = 8;
export const MEM_REG_MSG_SIZE = 8 + MEMORY_REGION_SIZE;
export const INFLIGHT_SIZE = 24;
export const LOG_SIZE = 16;
export const U64_SIZE = 8;

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

// ---- header ----

/** Parses and validates a request header (framing errors close the connection). */
export function decodeHeader(b: Uint8Array): MessageHeader {
  const dv = view(b);
  const request = dv.getUint32(0, LE);
  const flags = dv.getUint32(4, LE);
  const size = dv.getUint32(8, LE);
  if ((flags & VHOST_USER_VERSION_MASK) !== VHOST_USER_VERSION) {
    throw new VhostUserProtocolError('BAD_VERSION', `${requestName(request)}: header version ${flags & VHOST_USER_VERSION_MASK}, expected ${VHOST_USER_VERSION} (flags 0x${flags.toString(16)})`);
  }
  if ((flags & VHOST_USER_REPLY_MASK) !== 0) {
    throw new VhostUserProtocolError('BAD_FLAGS', `${requestName(request)}: a request carries the REPLY flag (flags 0x${flags.toString(16)})`);
  }
  if (size > VHOST_USER_MAX_PAYLOAD_SIZE) {
    throw new VhostUserProtocolError('PAYLOAD_TOO_LARGE', `${requestName(request)}: payload of ${size} bytes exceeds ${VHOST_USER_MAX_PAYLOAD_SIZE}`);
  }
  return { request, flags, size };
}

export function encodeHeader(dst: Uint8Array, request: number, flags: number, size: number): void {
  const dv = view(dst);
  dv.setUint32(0, request, LE);
  dv.setUint32(4, flags, LE);
  dv.setUint32(8, size, LE);
}

/** A whole message: header + payload. */
export function encodeMessage(request: number, flags: number, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(VHOST_USER_HDR_SIZE + payload.length);
  encodeHeader(out, request, flags, payload.length);
  out.set(payload, VHOST_USER_HDR_SIZE);
  return out;
}

/** A back-end reply: flags exactly VERSION | REPLY (0x5). */
export function encodeReply(request: number, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  return encodeMessage(request, VHOST_USER_REPLY_FLAGS, payload);
}

export function needsReply(flags: number): boolean {
  return (flags & VHOST_USER_NEED_REPLY_MASK) !== 0;
}

// ---- payload size rules ----

const fixedSizes: Record<number, number> = {
  [VHOST_USER_GET_FEATURES]: 0,
  [VHOST_USER_SET_FEATURES]: U64_SIZE,
  [VHOST_USER_SET_OWNER]: 0,
  [VHOST_USER_RESET_OWNER]: 0,
  [VHOST_USER_SET_LOG_BASE]: LOG_SIZE,
  [VHOST_USER_SET_LOG_FD]: 0,
  [VHOST_USER_SET_VRING_NUM]: VRING_STATE_SIZE,
  [VHOST_USER_SET_VRING_ADDR]: VRING_ADDR_SIZE,
  [VHOST_USER_SET_VRING_BASE]: VRING_STATE_SIZE,
  [VHOST_USER_GET_VRING_BASE]: VRING_STATE_SIZE,
  [VHOST_USER_SET_VRING_KICK]: U64_SIZE,
  [VHOST_USER_SET_VRING_CALL]: U64_SIZE,
  [VHOST_USER_SET_VRING_ERR]: U64_SIZE,
  [VHOST_USER_GET_PROTOCOL_FEATURES]: 0,
  [VHOST_USER_SET_PROTOCOL_FEATURES]: U64_SIZE,
  [VHOST_USER_GET_QUEUE_NUM]: 0,
  [VHOST_USER_SET_VRING_ENABLE]: VRING_STATE_SIZE,
  [VHOST_USER_SET_BACKEND_REQ_FD]: 0,
  [VHOST_USER_GET_INFLIGHT_FD]: INFLIGHT_SIZE,
  [VHOST_USER_SET_INFLIGHT_FD]: INFLIGHT_SIZE,
  [VHOST_USER_RESET_DEVICE]: 0,
  [VHOST_USER_GET_MAX_MEM_SLOTS]: 0,
  [VHOST_USER_ADD_MEM_REG]: MEM_REG_MSG_SIZE,
  [VHOST_USER_REM_MEM_REG]: MEM_REG_MSG_SIZE,
  [VHOST_USER_SET_STATUS]: U64_SIZE,
  [VHOST_USER_GET_STATUS]: 0,
};

function badSize(request: number, size: number, expected: string): VhostUserProtocolError {
  return new VhostUserProtocolError('BAD_SIZE', `${requestName(request)}: payload of ${size} bytes, expected ${expected}`);
}

/**
 * Checks the payload size of a request this layer implements. Requests outside the table
 * (unknown or unsupported) are not checked here.
 */
export function validatePayloadSize(request: number, payload: Uint8Array): void {
  const size = payload.length;
  const fixed = fixedSizes[request];
  if (fixed !== undefined) {
    if (size !== fixed) throw badSize(request, size, `${fixed}`);
    return;
  }
  switch (request) {
    case VHOST_USER_SET_MEM_TABLE: {
      if (size < MEM_TABLE_HDR_SIZE) throw badSize(request, size, `${MEM_TABLE_HDR_SIZE} + 32 x nregions`);
      const n = view(payload).getUint32(0, LE);
      if (n > VHOST_MEMORY_MAX_NREGIONS) {
        throw new VhostUserProtocolError('TOO_MANY_REGIONS', `SET_MEM_TABLE: ${n} regions, at most ${VHOST_MEMORY_MAX_NREGIONS}`);
      }
      const expected = MEM_TABLE_HDR_SIZE + MEMORY_REGION_SIZE * n;
      if (size !== expected) throw badSize(request, size, `${expected} for ${n} regions`);
      return;
    }
    case VHOST_USER_GET_CONFIG:
    case VHOST_USER_SET_CONFIG: {
      if (size < VHOST_USER_CONFIG_HDR_SIZE) throw badSize(request, size, `${VHOST_USER_CONFIG_HDR_SIZE} + config size`);
      const cfgSize = view(payload).getUint32(4, LE);
      if (cfgSize > VHOST_USER_MAX_CONFIG_SIZE) {
        throw new VhostUserProtocolError('BAD_SIZE', `${requestName(request)}: config size ${cfgSize} exceeds ${VHOST_USER_MAX_CONFIG_SIZE}`);
      }
      // QEMU sends exactly 12 + size. SPDK's virtio-user initiator sends the whole C struct
      // (12 + 256) whatever the size, and expects a reply of that length; DPDK's rte_vhost and
      // libvhost-user accept both and echo the request's length (see encodeConfig).
      if (size < VHOST_USER_CONFIG_HDR_SIZE + cfgSize || size > VHOST_USER_CONFIG_HDR_SIZE + VHOST_USER_MAX_CONFIG_SIZE) {
        throw badSize(request, size, `${VHOST_USER_CONFIG_HDR_SIZE + cfgSize} (12 + config size ${cfgSize}) up to ${VHOST_USER_CONFIG_HDR_SIZE + VHOST_USER_MAX_CONFIG_SIZE}`);
      }
      return;
    }
  }
}

// ---- integers ----

/** A u64 address/size as a JS number; refuses values past 2^53 rather than rounding them. */
function u64Number(dv: DataView, offset: number, what: string): number {
  const v = dv.getBigUint64(offset, LE);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new VhostUserProtocolError('BAD_VALUE', `${what} 0x${v.toString(16)} is beyond 2^53`);
  }
  return Number(v);
}

export function decodeU64(payload: Uint8Array): bigint {
  return view(payload).getBigUint64(0, LE);
}

export function encodeU64(value: bigint): Uint8Array {
  const out = new Uint8Array(U64_SIZE);
  view(out).setBigUint64(0, BigInt.asUintN(64, value), LE);
  return out;
}

// ---- vring ----

export function decodeVringState(payload: Uint8Array): VringState {
  const dv = view(payload);
  return { index: dv.getUint32(0, LE), num: dv.getUint32(4, LE) };
}

export function encodeVringState(index: number, num: number): Uint8Array {
  const out = new Uint8Array(VRING_STATE_SIZE);
  const dv = view(out);
  dv.setUint32(0, index, LE);
  dv.setUint32(4, num, LE);
  return out;
}

/** struct vhost_vring_addr: index, flags, then desc, used, avail, log (in that order). */
export function decodeVringAddr(payload: Uint8Array): VringAddr {
  const dv = view(payload);
  const index = dv.getUint32(0, LE);
  return {
    index,
    flags: dv.getUint32(4, LE),
    descUserAddr: u64Number(dv, 8, `ring ${index} descriptor address`),
    usedUserAddr: u64Number(dv, 16, `ring ${index} used address`),
    availUserAddr: u64Number(dv, 24, `ring ${index} avail address`),
    logGuestAddr: u64Number(dv, 32, `ring ${index} log address`),
  };
}

export function encodeVringAddr(a: VringAddr): Uint8Array {
  const out = new Uint8Array(VRING_ADDR_SIZE);
  const dv = view(out);
  dv.setUint32(0, a.index, LE);
  dv.setUint32(4, a.flags, LE);
  dv.setBigUint64(8, BigInt(a.descUserAddr), LE);
  dv.setBigUint64(16, BigInt(a.usedUserAddr), LE);
  dv.setBigUint64(24, BigInt(a.availUserAddr), LE);
  dv.setBigUint64(32, BigInt(a.logGuestAddr), LE);
  return out;
}

/** SET_VRING_KICK/CALL/ERR: bits 0-7 ring index, bit 8 no fd; any other bit is invalid. */
export function decodeVringFile(request: number, payload: Uint8Array): VringFile {
  const v = decodeU64(payload);
  if ((v & ~BigInt(VHOST_USER_VRING_IDX_MASK | VHOST_USER_VRING_NOFD_MASK)) !== 0n) {
    throw new VhostUserProtocolError('BAD_VALUE', `${requestName(request)}: payload 0x${v.toString(16)} has bits beyond the ring index and no-fd flag`);
  }
  const n = Number(v);
  return { index: n & VHOST_USER_VRING_IDX_MASK, noFd: (n & VHOST_USER_VRING_NOFD_MASK) !== 0 };
}

export function encodeVringFile(index: number, noFd: boolean): Uint8Array {
  return encodeU64(BigInt((index & VHOST_USER_VRING_IDX_MASK) | (noFd ? VHOST_USER_VRING_NOFD_MASK : 0)));
}

// ---- memory ----

function decodeRegionAt(dv: DataView, off: number, what: string): MemoryRegionDesc {
  return {
    guestPhysAddr: u64Number(dv, off, `${what} guest address`),
    size: u64Number(dv, off + 8, `${what} size`),
    userAddr: u64Number(dv, off + 16, `${what} user address`),
    mmapOffset: u64Number(dv, off + 24, `${what} mmap offset`),
  };
}

function encodeRegionAt(dv: DataView, off: number, r: MemoryRegionDesc): void {
  dv.setBigUint64(off, BigInt(r.guestPhysAddr), LE);
  dv.setBigUint64(off + 8, BigInt(r.size), LE);
  dv.setBigUint64(off + 16, BigInt(r.userAddr), LE);
  dv.setBigUint64(off + 24, BigInt(r.mmapOffset), LE);
}

/** SET_MEM_TABLE: u32 nregions, u32 padding, nregions x region (size already validated). */
export function decodeMemTable(payload: Uint8Array): MemoryRegionDesc[] {
  const dv = view(payload);
  const n = dv.getUint32(0, LE);
  const regions: MemoryRegionDesc[] = [];
  for (let i = 0; i < n; i++) regions.push(decodeRegionAt(dv, MEM_TABLE_HDR_SIZE + MEMORY_REGION_SIZE * i, `region ${i}`));
  return regions;
}

export function encodeMemTable(regions: readonly MemoryRegionDesc[]): Uint8Array {
  const out = new Uint8Array(MEM_TABLE_HDR_SIZE + MEMORY_REGION_SIZE * regions.length);
  const dv = view(out);
  dv.setUint32(0, regions.length, LE);
  regions.forEach((r, i) => encodeRegionAt(dv, MEM_TABLE_HDR_SIZE + MEMORY_REGION_SIZE * i, r));
  return out;
}

/** ADD_MEM_REG / REM_MEM_REG: u64 padding, then one region. */
export function decodeMemRegionMsg(payload: Uint8Array): MemoryRegionDesc {
  return decodeRegionAt(view(payload), 8, 'region');
}

export function encodeMemRegionMsg(r: MemoryRegionDesc): Uint8Array {
  const out = new Uint8Array(MEM_REG_MSG_SIZE);
  encodeRegionAt(view(out), 8, r);
  return out;
}

// ---- config space ----

/** GET_CONFIG / SET_CONFIG: u32 offset, u32 size, u32 flags, size bytes (size already validated). */
export function decodeConfig(payload: Uint8Array): ConfigSpace {
  const dv = view(payload);
  const size = dv.getUint32(4, LE);
  return {
    offset: dv.getUint32(0, LE),
    size,
    flags: dv.getUint32(8, LE),
    data: payload.subarray(VHOST_USER_CONFIG_HDR_SIZE, VHOST_USER_CONFIG_HDR_SIZE + size),
  };
}

/**
 * Config struct with exactly `size` data bytes: data is truncated or zero-padded to fit. A GET_CONFIG
 * reply is zero-padded further to `length`, the request's payload length (SPDK's initiator sends
 * and expects 12 + 256 bytes; QEMU sends and expects 12 + size).
 */
export function encodeConfig(offset: number, size: number, flags: number, data: Uint8Array, length = VHOST_USER_CONFIG_HDR_SIZE + size): Uint8Array {
  const out = new Uint8Array(Math.max(length, VHOST_USER_CONFIG_HDR_SIZE + size));
  const dv = view(out);
  dv.setUint32(0, offset, LE);
  dv.setUint32(4, size, LE);
  dv.setUint32(8, flags, LE);
  out.set(data.subarray(0, size), VHOST_USER_CONFIG_HDR_SIZE);
  return out;
}

// ---- inflight, log ----

export function decodeInflight(payload: Uint8Array): InflightDesc {
  const dv = view(payload);
  return {
    mmapSize: u64Number(dv, 0, 'inflight mmap size'),
    mmapOffset: u64Number(dv, 8, 'inflight mmap offset'),
    numQueues: dv.getUint16(16, LE),
    queueSize: dv.getUint16(18, LE),
  };
}

/** 24 bytes: the C struct is padded to 8, and QEMU rejects any other reply size. */
export function encodeInflight(d: InflightDesc): Uint8Array {
  const out = new Uint8Array(INFLIGHT_SIZE);
  const dv = view(out);
  dv.setBigUint64(0, BigInt(d.mmapSize), LE);
  dv.setBigUint64(8, BigInt(d.mmapOffset), LE);
  dv.setUint16(16, d.numQueues, LE);
  dv.setUint16(18, d.queueSize, LE);
  return out;
}

export function decodeLog(payload: Uint8Array): LogDesc {
  const dv = view(payload);
  return { size: u64Number(dv, 0, 'log size'), offset: u64Number(dv, 8, 'log offset') };
}
