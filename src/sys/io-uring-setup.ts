// Creating an io_uring: io_uring_setup, mapping the SQ ring, CQ ring and SQE array, checking the
// opcodes the block engine needs (IORING_REGISTER_PROBE), and telling clearly why io_uring is not
// usable here (no kernel support, sysctl, seccomp) so the caller can fall back.
import { readFileSync } from 'node:fs';
import { closeFd } from './fd.ts';
import { EPERM, errnoName, lastErrno, SysError } from './errno.ts';
import { mmapFd, munmap, viewOf } from './memory.ts';
import { sysIoUringRegister, sysIoUringSetup } from './block-io-libc.ts';
import {
  CQ_OFF_CQES,
  CQ_OFF_FLAGS,
  CQ_OFF_HEAD,
  CQ_OFF_RING_ENTRIES,
  CQ_OFF_RING_MASK,
  CQ_OFF_TAIL,
  CQE_SIZE,
  IO_URING_OP_SUPPORTED,
  IO_URING_PARAMS_SIZE,
  IO_URING_PROBE_HEADER,
  IO_URING_PROBE_OP_SIZE,
  IORING_FEAT_SINGLE_MMAP,
  IORING_MAX_ENTRIES,
  IORING_OFF_CQ_RING,
  IORING_OFF_SQ_RING,
  IORING_OFF_SQES,
  IORING_REGISTER_PROBE,
  IORING_REQUIRED_OPS,
  IORING_SETUP_CLAMP,
  IORING_SETUP_SUBMIT_ALL,
  IORING_SETUP_COOP_TASKRUN,
  IORING_SETUP_TASKRUN_FLAG,
  PARAMS_CQ_ENTRIES,
  PARAMS_CQ_OFF,
  PARAMS_FEATURES,
  PARAMS_FLAGS,
  PARAMS_SQ_ENTRIES,
  PARAMS_SQ_OFF,
  SQ_OFF_ARRAY,
  SQ_OFF_FLAGS,
  SQ_OFF_HEAD,
  SQ_OFF_RING_ENTRIES,
  SQ_OFF_RING_MASK,
  SQ_OFF_TAIL,
  SQE_SIZE,
} from './io-uring-abi.ts';

const ENOSYS = 38;
const EINVAL = 22;
const ENOMEM = 12;
const EAGAIN = 11;

/** io_uring cannot be used in this process; `errno` is the failing call's, 0 when no syscall failed. */
export class IoUringUnavailableError extends Error {
  readonly code = 'IO_URING_UNAVAILABLE';
  readonly errno: number;
  readonly reason: string;
  constructor(errno: number, reason: string) {
    super(`io_uring unavailable: ${reason}${errno ? ` (${errnoName(errno)}, errno ${errno})` : ''}`);
    this.name = 'IoUringUnavailableError';
    this.errno = errno;
    this.reason = reason;
  }
}

/** Why io_uring_setup failed, in words an operator can act on. */
export function explainSetupErrno(errno: number): string {
  if (errno === ENOSYS) return 'the kernel has no io_uring (built without CONFIG_IO_URING, or older than 5.1)';
  if (errno === EPERM) {
    let sysctl = '';
    try {
      sysctl = readFileSync('/proc/sys/kernel/io_uring_disabled', 'utf8').trim();
    } catch {
      sysctl = '';
    }
    if (sysctl === '2') return 'disabled by sysctl kernel.io_uring_disabled=2';
    if (sysctl === '1') return 'sysctl kernel.io_uring_disabled=1 restricts it to members of kernel.io_uring_group';
    return 'refused by a seccomp filter (e.g. a container runtime\'s default profile) or a security module';
  }
  if (errno === ENOMEM || errno === EAGAIN) return 'cannot allocate the rings (RLIMIT_MEMLOCK too low on kernels before 5.12)';
  if (errno === EINVAL) return 'the kernel rejected the setup parameters';
  return 'io_uring_setup failed';
}

/** The mapped rings of one io_uring, with u32/s32 views and the word indexes of each field. */
export interface IoUringRings {
  fd: number;
  sqEntries: number;
  cqEntries: number;
  features: number;
  setupFlags: number;
  /** u32 words over the SQ ring mapping. */
  sq32: Uint32Array;
  sqHead: number;
  sqTail: number;
  sqMask: number;
  sqFlags: number;
  /** u32 / s32 words over the CQ ring mapping (the same memory as sq32 with IORING_FEAT_SINGLE_MMAP). */
  cq32: Uint32Array;
  cqI32: Int32Array;
  cqHead: number;
  cqTail: number;
  cqMask: number;
  /** Word index of cq_off.flags, or -1 when the kernel has none (before 5.8). */
  cqFlags: number;
  /** Word index of the first CQE. */
  cqes: number;
  /** u32 words over the SQE array. */
  sqes: Uint32Array;
  unmap(): void;
}

function setupRing(entries: number, params: Uint8Array, flags: number): number {
  params.fill(0);
  const dv = new DataView(params.buffer, params.byteOffset, params.byteLength);
  dv.setUint32(PARAMS_FLAGS, flags, true);
  return sysIoUringSetup(entries, params);
}

/** Checks the kernel supports every opcode the block engine issues. */
function checkOpcodes(fd: number): void {
  const probe = new Uint8Array(IO_URING_PROBE_HEADER + 256 * IO_URING_PROBE_OP_SIZE);
  if (sysIoUringRegister(fd, IORING_REGISTER_PROBE, probe, 256) < 0) {
    const e = lastErrno();
    throw new IoUringUnavailableError(e, 'IORING_REGISTER_PROBE failed: the kernel is older than 5.6 and lacks IORING_OP_FALLOCATE');
  }
  const dv = new DataView(probe.buffer);
  const opsLen = probe[1];
  for (const [op, name] of IORING_REQUIRED_OPS) {
    const supported = op < opsLen && (dv.getUint16(IO_URING_PROBE_HEADER + op * IO_URING_PROBE_OP_SIZE + 2, true) & IO_URING_OP_SUPPORTED) !== 0;
    if (!supported) throw new IoUringUnavailableError(0, `the kernel does not support ${name}`);
  }
}

/**
 * io_uring_setup + mmap. Throws IoUringUnavailableError when io_uring cannot be used at all,
 * SysError for an ordinary failure (e.g. EMFILE, mmap).
 */
export function createIoUringRings(entries: number): IoUringRings {
  if (!Number.isInteger(entries) || entries < 1 || entries > IORING_MAX_ENTRIES) {
    throw new RangeError(`io_uring entries ${entries} is not in 1..${IORING_MAX_ENTRIES}`);
  }
  const params = new Uint8Array(IO_URING_PARAMS_SIZE);
  // SUBMIT_ALL (5.18): one bad SQE does not stop the rest of the batch. COOP_TASKRUN with
  // TASKRUN_FLAG (5.19): a completion from another CPU's interrupt does not IPI the polling reactor
  // to post its CQE; the kernel raises IORING_SQ_TASKRUN and the next submit() enters to post it
  // (without it, a disk read completing on the other CPU cost an IPI, a VM exit here). Older
  // kernels: without them, in that order.
  let flags = IORING_SETUP_CLAMP | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
  let fd = setupRing(entries, params, flags);
  for (const fewer of [IORING_SETUP_CLAMP | IORING_SETUP_SUBMIT_ALL, IORING_SETUP_CLAMP]) {
    if (fd >= 0 || lastErrno() !== EINVAL) break;
    flags = fewer;
    fd = setupRing(entries, params, flags);
  }
  if (fd < 0) {
    const e = lastErrno();
    if (e === ENOSYS || e === EPERM || e === EINVAL || e === ENOMEM || e === EAGAIN) throw new IoUringUnavailableError(e, explainSetupErrno(e));
    throw new SysError('io_uring_setup', e, `${entries} entries`);
  }
  const maps: [bigint, number][] = [];
  try {
    checkOpcodes(fd);
    const dv = new DataView(params.buffer);
    const sqEntries = dv.getUint32(PARAMS_SQ_ENTRIES, true);
    const cqEntries = dv.getUint32(PARAMS_CQ_ENTRIES, true);
    const features = dv.getUint32(PARAMS_FEATURES, true);
    const sqo = (f: number): number => dv.getUint32(PARAMS_SQ_OFF + f, true);
    const cqo = (f: number): number => dv.getUint32(PARAMS_CQ_OFF + f, true);
    let sqSize = sqo(SQ_OFF_ARRAY) + sqEntries * 4;
    let cqSize = cqo(CQ_OFF_CQES) + cqEntries * CQE_SIZE;
    const single = (features & IORING_FEAT_SINGLE_MMAP) !== 0;
    if (single) sqSize = cqSize = Math.max(sqSize, cqSize);
    const sqAddr = mmapFd(fd, sqSize, IORING_OFF_SQ_RING);
    maps.push([sqAddr, sqSize]);
    let cqAddr = sqAddr;
    if (!single) {
      cqAddr = mmapFd(fd, cqSize, IORING_OFF_CQ_RING);
      maps.push([cqAddr, cqSize]);
    }
    const sqesSize = sqEntries * SQE_SIZE;
    const sqesAddr = mmapFd(fd, sqesSize, IORING_OFF_SQES);
    maps.push([sqesAddr, sqesSize]);

    const sqBuf = viewOf(sqAddr, sqSize);
    const cqBuf = single ? sqBuf : viewOf(cqAddr, cqSize);
    const sq32 = new Uint32Array(sqBuf);
    const cq32 = new Uint32Array(cqBuf);
    // Identity SQ array: SQE i sits in array slot i, so the SQE index is simply tail & mask.
    const arr = sqo(SQ_OFF_ARRAY) / 4;
    for (let i = 0; i < sqEntries; i++) sq32[arr + i] = i;
    const cqFlagsOff = cqo(CQ_OFF_FLAGS);
    if (sq32[sqo(SQ_OFF_RING_ENTRIES) / 4] !== sqEntries || cq32[cqo(CQ_OFF_RING_ENTRIES) / 4] !== cqEntries) {
      throw new IoUringUnavailableError(0, 'ring sizes in the mapping disagree with io_uring_params');
    }
    const closeMaps = maps.slice();
    return {
      fd,
      sqEntries,
      cqEntries,
      features,
      setupFlags: flags,
      sq32,
      sqHead: sqo(SQ_OFF_HEAD) / 4,
      sqTail: sqo(SQ_OFF_TAIL) / 4,
      sqMask: sq32[sqo(SQ_OFF_RING_MASK) / 4],
      sqFlags: sqo(SQ_OFF_FLAGS) / 4,
      cq32,
      cqI32: new Int32Array(cqBuf),
      cqHead: cqo(CQ_OFF_HEAD) / 4,
      cqTail: cqo(CQ_OFF_TAIL) / 4,
      cqMask: cq32[cqo(CQ_OFF_RING_MASK) / 4],
      cqFlags: cqFlagsOff === 0 ? -1 : cqFlagsOff / 4,
      cqes: cqo(CQ_OFF_CQES) / 4,
      sqes: new Uint32Array(viewOf(sqesAddr, sqesSize)),
      unmap: () => {
        for (const [a, l] of closeMaps) munmap(a, l);
        closeMaps.length = 0;
      },
    };
  } catch (e) {
    for (const [a, l] of maps) munmap(a, l);
    closeFd(fd);
    throw e;
  }
}

let support: { available: true } | { available: false; error: IoUringUnavailableError } | undefined;

/** Whether io_uring works in this process (checked once per thread with a tiny ring). */
export function ioUringSupport(): { available: true } | { available: false; error: IoUringUnavailableError } {
  if (support) return support;
  try {
    const r = createIoUringRings(2);
    r.unmap();
    closeFd(r.fd);
    support = { available: true };
  } catch (e) {
    if (!(e instanceof IoUringUnavailableError)) throw e;
    support = { available: false, error: e };
  }
  return support;
}
