// Payload structs of vhost-user messages, little-endian (host order on x86-64), front-end side.

/** A memory region as SET_MEM_TABLE / ADD_MEM_REG describe it (GuestMemoryRegion fits). */
export interface MemRegionDescription {
  guestPhysAddr: number;
  size: number;
  userAddr: number;
  mmapOffset: number;
  fd: number;
}

export interface VringAddr {
  index: number;
  /** Bit 0 (VHOST_VRING_F_LOG): log used-ring writes. */
  flags: number;
  /** Front-end user addresses, not GPAs. */
  descUserAddr: number;
  usedUserAddr: number;
  availUserAddr: number;
  logGuestAddr: number;
}

export interface InflightInfo {
  mmapSize: bigint;
  mmapOffset: bigint;
  numQueues: number;
  queueSize: number;
}

export const VRING_STATE_SIZE = 8;
export const VRING_ADDR_SIZE = 40;
export const MEM_REGION_SIZE = 32;
export const MEM_TABLE_HEADER_SIZE = 8;
export const MEM_REG_SIZE = 8 + MEM_REGION_SIZE;
export const CONFIG_HEADER_SIZE = 12;
export const INFLIGHT_SIZE = 24;
export const LOG_BASE_SIZE = 16;
export const U64_SIZE = 8;

function u64(dv: DataView, off: number, v: number | bigint): void {
  dv.setBigUint64(off, BigInt.asUintN(64, BigInt(v)), true);
}

export function encodeU64(value: bigint | number): Uint8Array {
  const out = new Uint8Array(U64_SIZE);
  u64(new DataView(out.buffer), 0, value);
  return out;
}

export function decodeU64(payload: Uint8Array): bigint {
  return new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getBigUint64(0, true);
}

export function encodeVringState(index: number, num: number): Uint8Array {
  const out = new Uint8Array(VRING_STATE_SIZE);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, index >>> 0, true);
  dv.setUint32(4, num >>> 0, true);
  return out;
}

export function decodeVringState(payload: Uint8Array): { index: number; num: number } {
  const dv = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  return { index: dv.getUint32(0, true), num: dv.getUint32(4, true) };
}

export function encodeVringAddr(a: VringAddr): Uint8Array {
  const out = new Uint8Array(VRING_ADDR_SIZE);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, a.index >>> 0, true);
  dv.setUint32(4, a.flags >>> 0, true);
  u64(dv, 8, a.descUserAddr);
  u64(dv, 16, a.usedUserAddr);
  u64(dv, 24, a.availUserAddr);
  u64(dv, 32, a.logGuestAddr);
  return out;
}

function writeRegion(dv: DataView, off: number, r: MemRegionDescription): void {
  u64(dv, off, r.guestPhysAddr);
  u64(dv, off + 8, r.size);
  u64(dv, off + 16, r.userAddr);
  u64(dv, off + 24, r.mmapOffset);
}

/** `u32 nregions, u32 padding`, then the regions. */
export function encodeMemTable(regions: readonly MemRegionDescription[]): Uint8Array {
  const out = new Uint8Array(MEM_TABLE_HEADER_SIZE + MEM_REGION_SIZE * regions.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, regions.length, true);
  for (let i = 0; i < regions.length; i++) writeRegion(dv, MEM_TABLE_HEADER_SIZE + MEM_REGION_SIZE * i, regions[i]);
  return out;
}

/** ADD_MEM_REG / REM_MEM_REG: `u64 padding`, then one region. */
export function encodeMemReg(region: MemRegionDescription): Uint8Array {
  const out = new Uint8Array(MEM_REG_SIZE);
  writeRegion(new DataView(out.buffer), 8, region);
  return out;
}

/** `u32 offset, u32 size, u32 flags, u8 payload[size]`. */
export function encodeConfig(offset: number, size: number, flags: number, data?: Uint8Array): Uint8Array {
  const out = new Uint8Array(CONFIG_HEADER_SIZE + size);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, offset >>> 0, true);
  dv.setUint32(4, size >>> 0, true);
  dv.setUint32(8, flags >>> 0, true);
  if (data) out.set(data.subarray(0, size), CONFIG_HEADER_SIZE);
  return out;
}

export function decodeConfig(payload: Uint8Array): { offset: number; size: number; flags: number; data: Uint8Array } {
  const dv = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  return {
    offset: dv.getUint32(0, true),
    size: dv.getUint32(4, true),
    flags: dv.getUint32(8, true),
    data: payload.slice(CONFIG_HEADER_SIZE),
  };
}

export function encodeInflight(i: InflightInfo): Uint8Array {
  const out = new Uint8Array(INFLIGHT_SIZE);
  const dv = new DataView(out.buffer);
  u64(dv, 0, i.mmapSize);
  u64(dv, 8, i.mmapOffset);
  dv.setUint16(16, i.numQueues, true);
  dv.setUint16(18, i.queueSize, true);
  return out;
}

export function decodeInflight(payload: Uint8Array): InflightInfo {
  const dv = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  return {
    mmapSize: dv.getBigUint64(0, true),
    mmapOffset: dv.getBigUint64(8, true),
    numQueues: dv.getUint16(16, true),
    queueSize: dv.getUint16(18, true),
  };
}

export function encodeLogBase(size: bigint | number, offset: bigint | number): Uint8Array {
  const out = new Uint8Array(LOG_BASE_SIZE);
  const dv = new DataView(out.buffer);
  u64(dv, 0, size);
  u64(dv, 8, offset);
  return out;
}
