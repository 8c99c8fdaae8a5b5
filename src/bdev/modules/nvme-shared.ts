// What an NVMe/TCP controller (main thread, admin queue) and the I/O queues of its namespaces'
// channels (reactor threads) share: the channel spec, and control words through which the
// controller announces its generation (a new controller ID after each reconnect) and the
// channels ask for a reset and report their queues.
import type { BdevChannelSpec } from '../bdev.ts';
import type { StreamTarget } from '../../sys/stream-socket.ts';

export const NVME_MODULE = 'nvme';

export interface NvmeChannelSpec extends BdevChannelSpec {
  module: 'nvme';
  nsid: number;
  target: StreamTarget;
  subnqn: string;
  hostnqn: string;
  /** 16 bytes. */
  hostid: Uint8Array;
  headerDigest: boolean;
  dataDigest: boolean;
  /** Entries of each I/O queue (commands in flight at most: one less). */
  queueSize: number;
  /** Largest data transfer of one command, bytes (longer I/O goes as several). */
  maxTransfer: number;
  /** Largest write sent inside the command capsule, bytes (0 = always by R2T). */
  inCapsule: number;
  /** Optional NVM commands the controller supports (Identify ONCS). */
  oncs: number;
  volatileWriteCache: boolean;
  connectTimeoutMs: number;
  /** Int32 control words of the controller (CTL_*). */
  control: SharedArrayBuffer;
}

/** Even: a controller is live with CTL_CNTLID; odd: resetting. Bumped at each change. */
export const CTL_GEN = 0;
export const CTL_CNTLID = 1;
/** CTRL_STATE_*. */
export const CTL_STATE = 2;
/** Set while reconnecting past fast_io_fail_timeout_sec: I/O fails at once. */
export const CTL_FAIL_FAST = 3;
/** Channels add one (and notify) when their queue broke: the controller resets. */
export const CTL_RESET_REQ = 4;
export const CTL_QUEUES = 5; // I/O queues open (connected)
export const CTL_CHANNELS = 6;
export const CTL_QUEUE_LOSSES = 7;
export const CTL_RESENT = 8;
export const CTL_FAILED_IOS = 9;
export const CTL_IO_ERRORS = 10; // completions with an error status
export const CTL_LAST_STATUS = 11; // NVMe status of the last failed completion
export const CTL_LAST_ERRNO = 12;
/** I/O queue IDs the controller granted (Number of Queues). */
export const CTL_MAX_QID = 13;
/** Bitmap of I/O queue IDs in use, 32 per word, from here on. */
export const CTL_QID_BITMAP = 16;
export const MAX_IO_QUEUES = 1024;
export const CTL_WORDS = CTL_QID_BITMAP + MAX_IO_QUEUES / 32;

export const CTRL_STATE_ENABLED = 0;
export const CTRL_STATE_RESETTING = 1;
export const CTRL_STATE_FAILED = 2;
export const CTRL_STATE_DELETING = 3;

/** Takes the lowest free I/O queue ID, or returns 0 when all granted ones are in use. */
export function takeQid(ctl: Int32Array): number {
  const max = Atomics.load(ctl, CTL_MAX_QID);
  for (let qid = 1; qid <= max && qid < MAX_IO_QUEUES; qid++) {
    const w = CTL_QID_BITMAP + (qid >> 5);
    const bit = 1 << (qid & 31);
    for (;;) {
      const old = Atomics.load(ctl, w);
      if ((old & bit) !== 0) break;
      if (Atomics.compareExchange(ctl, w, old, old | bit) === old) return qid;
    }
  }
  return 0;
}

export function releaseQid(ctl: Int32Array, qid: number): void {
  if (qid <= 0 || qid >= MAX_IO_QUEUES) return;
  Atomics.and(ctl, CTL_QID_BITMAP + (qid >> 5), ~(1 << (qid & 31)));
}
