// Shared-memory layout of the thread-pool engine (the io_uring fallback). One SharedArrayBuffer
// per engine holds a control header, a submission ring and a completion ring of slot numbers, and
// one request record per slot. The engine's thread is the only producer of submissions and the
// only consumer of completions; the workers consume submissions and produce completions.

/** Header words (Int32). */
export const TP_SQ_TAIL = 0; // submissions published (engine writes)
export const TP_SQ_HEAD = 1; // submissions claimed (workers compare-exchange)
export const TP_CQ_TAIL = 2; // completion positions reserved (workers add)
export const TP_DONE_SEQ = 3; // bumped after each completion is stored (engine.wait() sleeps on it)
export const TP_STOP = 4; // 1: workers exit
export const TP_NOTIFY = 5; // 1: workers signal the eventfd after each completion
export const TP_EVENTFD = 6;
export const TP_MASK = 7; // ring capacity - 1
export const TP_READY = 8; // workers that reached their loop
export const TP_HEADER_WORDS = 16;

/** Request record words (Int32), per slot. */
export const TP_REC_OP = 0;
export const TP_REC_FD = 1;
export const TP_REC_IOVCNT = 2;
export const TP_REC_MODE = 3;
export const TP_REC_RESULT = 4;
export const TP_REC_WORDS = 5;

/** Request record doubles (Float64), per slot: byte offset, length, iovec array address. */
export const TP_F64_OFFSET = 0;
export const TP_F64_LEN = 1;
export const TP_F64_IOV = 2;
export const TP_F64_WORDS = 3;

/** Operations. */
export const TP_OP_READV = 1;
export const TP_OP_WRITEV = 2;
export const TP_OP_FSYNC = 3;
export const TP_OP_FALLOCATE = 4;

export interface ThreadPoolViews {
  ctl: Int32Array;
  sq: Int32Array;
  cq: Int32Array;
  rec: Int32Array;
  f64: Float64Array;
}

export function ringCapacity(depth: number): number {
  let c = 1;
  while (c < depth) c *= 2;
  return c;
}

export function threadPoolBytes(depth: number): number {
  const cap = ringCapacity(depth);
  const i32Words = TP_HEADER_WORDS + 2 * cap + depth * TP_REC_WORDS;
  return Math.ceil((i32Words * 4) / 8) * 8 + depth * TP_F64_WORDS * 8;
}

/** Typed views over an engine's SharedArrayBuffer (the engine and every worker build the same ones). */
export function threadPoolViews(sab: SharedArrayBuffer, depth: number): ThreadPoolViews {
  const cap = ringCapacity(depth);
  const i32Words = TP_HEADER_WORDS + 2 * cap + depth * TP_REC_WORDS;
  const f64Offset = Math.ceil((i32Words * 4) / 8) * 8;
  return {
    ctl: new Int32Array(sab, 0, TP_HEADER_WORDS),
    sq: new Int32Array(sab, TP_HEADER_WORDS * 4, cap),
    cq: new Int32Array(sab, (TP_HEADER_WORDS + cap) * 4, cap),
    rec: new Int32Array(sab, (TP_HEADER_WORDS + 2 * cap) * 4, depth * TP_REC_WORDS),
    f64: new Float64Array(sab, f64Offset, depth * TP_F64_WORDS),
  };
}
