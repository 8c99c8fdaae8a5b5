// The state of a LUN that exists once per I_T nexus, not once per thread: pending unit attentions
// and the mode parameters a guest may change (WCE, D_SENSE). A virtio-scsi device spread over
// several reactors has a ScsiLun for the same LUN in each; they share this through one
// SharedArrayBuffer, so a unit attention is reported once and a MODE SELECT applies to every
// queue. Plain Atomics loads on the command path (no allocation); the unit attention FIFO takes a
// short spin lock only when it changes.
import { ScsiConfigError } from './scsi-errors.ts';

const INIT = 0;
const WCE = 1;
const D_SENSE = 2;
export const UA_LOCK = 3;
export const UA_COUNT = 4;
export const UA_CODES = 5;
export const UA_CAPACITY = 8;
const WORDS = UA_CODES + UA_CAPACITY;
export const LUN_SHARED_STATE_BYTES = WORDS * 4;

/** A fresh shared state for one LUN (control plane; posted to each reactor with the LUN config). */
export function createLunSharedState(): SharedArrayBuffer {
  return new SharedArrayBuffer(LUN_SHARED_STATE_BYTES);
}

export class LunSharedState {
  readonly words: Int32Array;

  /** Without a buffer the state is private to this LUN instance (one reactor, unit tests). */
  constructor(buffer?: SharedArrayBuffer) {
    if (buffer !== undefined && (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength !== LUN_SHARED_STATE_BYTES)) {
      throw new ScsiConfigError('SCSI_BAD_LUN_STATE', `LUN shared state must be a SharedArrayBuffer of ${LUN_SHARED_STATE_BYTES} bytes`);
    }
    this.words = new Int32Array(buffer ?? new ArrayBuffer(LUN_SHARED_STATE_BYTES));
  }

  /** True for the first instance only: it sets the power-on state the others then share. */
  claimInit(): boolean {
    return Atomics.compareExchange(this.words, INIT, 0, 1) === 0;
  }

  get wce(): boolean {
    return Atomics.load(this.words, WCE) !== 0;
  }

  set wce(v: boolean) {
    Atomics.store(this.words, WCE, v ? 1 : 0);
  }

  get dSense(): boolean {
    return Atomics.load(this.words, D_SENSE) !== 0;
  }

  set dSense(v: boolean) {
    Atomics.store(this.words, D_SENSE, v ? 1 : 0);
  }
}
