// A worker of the thread-pool engine: claims submissions from the shared ring, runs them as
// blocking syscalls (preadv/pwritev/fsync/fallocate on fds and iovec arrays of the same process),
// stores the result and publishes the slot on the completion ring. Sleeps with Atomics.wait.
import { workerData } from 'node:worker_threads';
import { blockLibc } from './block-io-libc.ts';
import { EAGAIN, EINTR, lastErrno } from './errno.ts';
import { eventfdSignal } from './eventfd.ts';
import {
  TP_CQ_TAIL,
  TP_DONE_SEQ,
  TP_EVENTFD,
  TP_F64_IOV,
  TP_F64_LEN,
  TP_F64_OFFSET,
  TP_F64_WORDS,
  TP_MASK,
  TP_NOTIFY,
  TP_OP_FALLOCATE,
  TP_OP_FSYNC,
  TP_OP_READV,
  TP_OP_WRITEV,
  TP_READY,
  TP_REC_FD,
  TP_REC_IOVCNT,
  TP_REC_MODE,
  TP_REC_OP,
  TP_REC_RESULT,
  TP_REC_WORDS,
  TP_SQ_HEAD,
  TP_SQ_TAIL,
  TP_STOP,
  threadPoolViews,
} from './thread-pool-layout.ts';

const EINVAL = 22;
const { sab, depth } = workerData as { sab: SharedArrayBuffer; depth: number };
const { ctl, sq, cq, rec, f64 } = threadPoolViews(sab, depth);
const mask = ctl[TP_MASK];

function run(slot: number): number {
  if (!(slot >= 0 && slot < depth)) return -EINVAL;
  const r = slot * TP_REC_WORDS;
  const d = slot * TP_F64_WORDS;
  const op = rec[r + TP_REC_OP];
  const fd = rec[r + TP_REC_FD];
  for (;;) {
    let n: number;
    switch (op) {
      case TP_OP_READV:
        n = Number(blockLibc.preadv(fd, f64[d + TP_F64_IOV], rec[r + TP_REC_IOVCNT], f64[d + TP_F64_OFFSET]));
        break;
      case TP_OP_WRITEV:
        n = Number(blockLibc.pwritev(fd, f64[d + TP_F64_IOV], rec[r + TP_REC_IOVCNT], f64[d + TP_F64_OFFSET]));
        break;
      case TP_OP_FSYNC:
        n = blockLibc.fsync(fd);
        break;
      case TP_OP_FALLOCATE:
        n = blockLibc.fallocate(fd, rec[r + TP_REC_MODE], f64[d + TP_F64_OFFSET], f64[d + TP_F64_LEN]);
        break;
      default:
        return -EINVAL;
    }
    if (n >= 0) return n;
    const e = lastErrno();
    if (e !== EINTR && e !== EAGAIN) return -e;
  }
}

Atomics.add(ctl, TP_READY, 1);
Atomics.notify(ctl, TP_READY);
for (;;) {
  if (Atomics.load(ctl, TP_STOP) !== 0) break;
  const h = Atomics.load(ctl, TP_SQ_HEAD);
  const t = Atomics.load(ctl, TP_SQ_TAIL);
  if (h === t) {
    Atomics.wait(ctl, TP_SQ_TAIL, t);
    continue;
  }
  // Read the entry BEFORE claiming it: once head moves past h, the engine may reuse that ring
  // position for a later submission. While head is still h (the claim below succeeds only then),
  // the position cannot have been reused: that would take more outstanding requests than slots.
  const slot = Atomics.load(sq, h & mask);
  if (Atomics.compareExchange(ctl, TP_SQ_HEAD, h, (h + 1) | 0) !== h) continue;
  Atomics.store(rec, slot * TP_REC_WORDS + TP_REC_RESULT, run(slot));
  const c = Atomics.add(ctl, TP_CQ_TAIL, 1);
  Atomics.store(cq, c & mask, slot);
  Atomics.add(ctl, TP_DONE_SEQ, 1);
  Atomics.notify(ctl, TP_DONE_SEQ);
  if (Atomics.load(ctl, TP_NOTIFY) !== 0) eventfdSignal(ctl[TP_EVENTFD]);
}
