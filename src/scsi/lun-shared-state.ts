// The state of a LUN that exists once per I_T nexus, not once per thread: pending unit attentions,
// the mode parameters a guest may change (WCE, D_SENSE) and the LBA range locks of COMPARE AND
// WRITE. A virtio-scsi device spread over several reactors has a ScsiLun for the same LUN in each;
// they share this through one SharedArrayBuffer, so a unit attention is reported once, a MODE
// SELECT applies to every queue and a COMPARE AND WRITE is atomic against writes on any queue.
// Plain Atomics loads on the command path (no allocation); the unit attention FIFO takes a short
// spin lock only when it changes.
import { ScsiConfigError } from './scsi-errors.ts';
import { RangeLockTable, rangeLockTableWords } from './range-lock-table.ts';

const INIT = 0;
const WCE = 1;
const D_SENSE = 2;
export const UA_LOCK = 3;
export const UA_COUNT = 4;
export const UA_CODES = 5;
export const UA_CAPACITY = 8;
/** How many instances (reactors) the range lock table has rows for; set at creation. */
const INSTANCES = UA_CODES + UA_CAPACITY;
const HEADER_WORDS = INSTANCES + 1;

function stateBytes(instances: number): number {
  return (HEADER_WORDS + rangeLockTableWords(instances)) * 4;
}

/**
 * A fresh shared state for one LUN (control plane; posted to each reactor with the LUN config).
 * `instances`: the reactors that will hold the LUN (each takes a row of the range lock table).
 */
export function createLunSharedState(instances: number): SharedArrayBuffer {
  const buffer = new SharedArrayBuffer(stateBytes(instances));
  new Int32Array(buffer)[INSTANCES] = instances;
  return buffer;
}

export class LunSharedState {
  readonly words: Int32Array;
  readonly rangeLocks: RangeLockTable;

  /** Without a buffer the state is private to this LUN instance (one reactor, unit tests). */
  constructor(buffer?: SharedArrayBuffer) {
    const memory = buffer ?? new ArrayBuffer(stateBytes(1));
    if (buffer !== undefined && (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength < HEADER_WORDS * 4)) {
      throw new ScsiConfigError('SCSI_BAD_LUN_STATE', 'LUN shared state must be a SharedArrayBuffer made by createLunSharedState');
    }
    this.words = new Int32Array(memory, 0, HEADER_WORDS);
    const instances = buffer === undefined ? 1 : this.words[INSTANCES];
    if (buffer !== undefined && (!Number.isInteger(instances) || instances < 1 || memory.byteLength !== stateBytes(instances))) {
      throw new ScsiConfigError('SCSI_BAD_LUN_STATE', `LUN shared state of ${memory.byteLength} bytes does not hold a range lock table for ${instances} instances`);
    }
    this.rangeLocks = new RangeLockTable(new Int32Array(memory, HEADER_WORDS * 4), instances);
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
