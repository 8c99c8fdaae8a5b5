// The command capsules an NVMe/TCP I/O queue sends (nvme-channel.ts): NVM Read, Write, Flush,
// Write Zeroes and Dataset Management for a slot's current part, and the queue's Fabrics Connect.
// Written in place into the queue's send buffer; nothing is allocated.
import { crc32c } from '../../blob/crc32c.ts';
import type { SgList } from '../../iovec/sg-list.ts';
import { CONNECT_DATA_SIZE } from './nvme-connect.ts';
import { NvmeSlot, OP_FLUSH, OP_READ, OP_UNMAP, OP_WRITE, OP_WRITE_ZEROES } from './nvme-slot.ts';
import {
  DSM_AD,
  DSM_RANGE_SIZE,
  FABRICS_OPC,
  FCTYPE_CONNECT,
  NVM_DSM,
  NVM_FLUSH,
  NVM_READ,
  NVM_WRITE,
  NVM_WRITE_ZEROES,
  SGL_DATA_BLOCK_OFFSET,
  SGL_TRANSPORT_DATA_BLOCK,
  SQE_CDW10,
  SQE_CDW11,
  SQE_CDW12,
  SQE_FLAGS_SGL,
} from './nvme-spec.ts';
import { CAPSULE_CMD_HLEN, CH_SIZE, dataOffset, DIGEST_SIZE, encodeCapsuleHeader, headerDigest } from './nvme-tcp-pdu.ts';

const TWO_32 = 0x1_0000_0000;

/** The SQE of a command capsule at `at`, zeroed but for opcode, PSDT and CID; returns its offset. */
function startSqe(dv: DataView, at: number, opcode: number, cid: number): number {
  const q = at + CH_SIZE;
  for (let i = 0; i < 64; i += 4) dv.setUint32(q + i, 0);
  dv.setUint8(q, opcode);
  dv.setUint8(q + 1, SQE_FLAGS_SGL);
  dv.setUint16(q + 2, cid, true);
  return q;
}

/** Header digest after the capsule header, data digest after `capsuleData` bytes at `cdAt`. */
function sealCapsule(dv: DataView, b: Uint8Array, at: number, capsuleData: number, cdAt: number, hdgst: boolean, ddgst: boolean): void {
  if (hdgst) dv.setUint32(at + CAPSULE_CMD_HLEN, headerDigest(b, at, CAPSULE_CMD_HLEN), true);
  if (capsuleData > 0 && ddgst) dv.setUint32(at + cdAt + capsuleData, crc32c(b, at + cdAt, at + cdAt + capsuleData), true);
}

/**
 * The capsule of slot `s`'s current part at `at`: `capsuleData` bytes (a write's data, or a DSM
 * range) in the capsule at offset `cdAt`, or none (reads and larger writes move data by PDUs).
 */
export function encodeIoCommand(dv: DataView, b: Uint8Array, at: number, s: NvmeSlot, nsid: number, blockSize: number, capsuleData: number, cdAt: number, hdgst: boolean, ddgst: boolean): void {
  encodeCapsuleHeader(dv, at, capsuleData, hdgst, ddgst, cdAt);
  const opcode = s.op === OP_READ ? NVM_READ : s.op === OP_WRITE ? NVM_WRITE : s.op === OP_FLUSH ? NVM_FLUSH : s.op === OP_WRITE_ZEROES ? NVM_WRITE_ZEROES : NVM_DSM;
  const q = startSqe(dv, at, opcode, s.index);
  dv.setUint32(q + 4, nsid, true);
  const lba = s.lba + s.partLba;
  const lo = lba % TWO_32;
  const hi = Math.floor(lba / TWO_32);
  switch (s.op) {
    case OP_READ:
    case OP_WRITE:
      dv.setUint32(q + 32, s.dataBytes, true);
      dv.setUint8(q + 39, capsuleData > 0 ? SGL_DATA_BLOCK_OFFSET : SGL_TRANSPORT_DATA_BLOCK);
      dv.setUint32(q + SQE_CDW10, lo, true);
      dv.setUint32(q + SQE_CDW11, hi, true);
      dv.setUint32(q + SQE_CDW12, s.partBlocks - 1, true);
      if (capsuleData > 0) (s.sg as SgList).copyOut(s.sgOffset + s.partLba * blockSize, b, at + cdAt, capsuleData);
      break;
    case OP_WRITE_ZEROES:
      dv.setUint32(q + SQE_CDW10, lo, true);
      dv.setUint32(q + SQE_CDW11, hi, true);
      dv.setUint32(q + SQE_CDW12, s.partBlocks - 1, true);
      break;
    case OP_UNMAP: {
      dv.setUint32(q + 32, DSM_RANGE_SIZE, true);
      dv.setUint8(q + 39, SGL_DATA_BLOCK_OFFSET);
      dv.setUint32(q + SQE_CDW10, 0, true); // one range
      dv.setUint32(q + SQE_CDW11, DSM_AD, true);
      const r = at + cdAt;
      dv.setUint32(r, 0, true);
      dv.setUint32(r + 4, s.partBlocks >>> 0, true);
      dv.setUint32(r + 8, lo, true);
      dv.setUint32(r + 12, hi, true);
      break;
    }
  }
  sealCapsule(dv, b, at, capsuleData, cdAt, hdgst, ddgst);
}

/** Fabrics Connect of I/O queue `qid` (`sqsize` 0-based) with its 1024-byte data in the capsule, at `at`; returns where it ends. */
export function encodeIoQueueConnect(dv: DataView, b: Uint8Array, at: number, cid: number, qid: number, sqsize: number, connectData: Uint8Array, hdgst: boolean, ddgst: boolean, cpda: number): number {
  const cdAt = dataOffset(CAPSULE_CMD_HLEN + (hdgst ? DIGEST_SIZE : 0), cpda);
  encodeCapsuleHeader(dv, at, CONNECT_DATA_SIZE, hdgst, ddgst, cdAt);
  const q = startSqe(dv, at, FABRICS_OPC, cid);
  dv.setUint8(q + 4, FCTYPE_CONNECT);
  dv.setUint32(q + 32, CONNECT_DATA_SIZE, true);
  dv.setUint8(q + 39, SGL_DATA_BLOCK_OFFSET);
  dv.setUint16(q + 42, qid, true);
  dv.setUint16(q + 44, sqsize, true);
  b.set(connectData, at + cdAt);
  sealCapsule(dv, b, at, CONNECT_DATA_SIZE, cdAt, hdgst, ddgst);
  return at + cdAt + CONNECT_DATA_SIZE + (ddgst ? DIGEST_SIZE : 0);
}
