// The gate between a file's mappings in the reactors and the lease that keeps the file from
// shrinking under them (uring-file-map.ts). One SharedArrayBuffer per bdev: word 0 says whether
// the mappings may be touched now; each channel claims a slot of its own (one cache line each, so
// reactors do not share a line) and marks it busy around every copy. Closing the gate waits until
// no slot is busy: after that no copy can touch a mapping until the gate opens again.
//
// Every access is a sequentially consistent Atomics operation: the owner stores CLOSED and then
// reads the slots; a user stores BUSY and then reads the state. Whichever store comes first in the
// single total order, either the user sees CLOSED or the owner sees BUSY and waits.

/** Int32 words per slot: 64 bytes. */
const STRIDE = 16;
/** Channels of one bdev that can use its mapping at once; more channels go through read/write. */
export const MAP_GATE_SLOTS = 256;

const STATE = 0;
const OPEN = 1;
const CLOSED = 0;

const SLOT_FREE = 0;
const SLOT_IDLE = 1;
const SLOT_BUSY = 2;

/** How long the owner sleeps between looks at a busy slot (ms): a copy takes microseconds. */
const BUSY_RECHECK_MS = 0.05;

function slotIndex(k: number): number {
  return (k + 1) * STRIDE;
}

export function newMapGateBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer((MAP_GATE_SLOTS + 1) * STRIDE * 4);
}

function checkBuffer(buffer: unknown): Int32Array {
  if (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength !== (MAP_GATE_SLOTS + 1) * STRIDE * 4) {
    throw new TypeError('map gate: not a gate buffer');
  }
  return new Int32Array(buffer);
}

/** The owner's side (main thread): opens the gate, and closes it once no user is inside. */
export class MapGateOwner {
  readonly buffer: SharedArrayBuffer;
  readonly #w: Int32Array;

  constructor(buffer: SharedArrayBuffer = newMapGateBuffer()) {
    this.buffer = buffer;
    this.#w = checkBuffer(buffer);
  }

  get isOpen(): boolean {
    return Atomics.load(this.#w, STATE) === OPEN;
  }

  open(): void {
    Atomics.store(this.#w, STATE, OPEN);
  }

  /**
   * Closes the gate and returns once no copy is in progress. A user can be inside only for the
   * length of one copy; `onSlow` is called (once) if that takes longer than `slowMs`.
   */
  close(slowMs = 1000, onSlow?: (slot: number) => void): void {
    const w = this.#w;
    Atomics.store(w, STATE, CLOSED);
    const start = performance.now();
    let warned = false;
    for (let k = 0; k < MAP_GATE_SLOTS; k++) {
      const i = slotIndex(k);
      while (Atomics.load(w, i) === SLOT_BUSY) {
        Atomics.wait(w, STATE, CLOSED, BUSY_RECHECK_MS);
        if (!warned && performance.now() - start > slowMs) {
          warned = true;
          onSlow?.(k);
        }
      }
    }
  }

  /** Slots claimed now (diagnostics and tests). */
  usersClaimed(): number {
    let n = 0;
    for (let k = 0; k < MAP_GATE_SLOTS; k++) if (Atomics.load(this.#w, slotIndex(k)) !== SLOT_FREE) n++;
    return n;
  }
}

/** A channel's side: one claimed slot; enter() before touching the mapping, leave() after. */
export class MapGateUser {
  readonly #w: Int32Array;
  #slot = -1;

  constructor(buffer: SharedArrayBuffer) {
    this.#w = checkBuffer(buffer);
    for (let k = 0; k < MAP_GATE_SLOTS; k++) {
      if (Atomics.compareExchange(this.#w, slotIndex(k), SLOT_FREE, SLOT_IDLE) === SLOT_FREE) {
        this.#slot = slotIndex(k);
        break;
      }
    }
  }

  /** False when every slot was taken: this user must never enter. */
  get claimed(): boolean {
    return this.#slot >= 0;
  }

  /** True: the mapping may be touched until leave(). False: it may not (nothing to undo). */
  enter(): boolean {
    const s = this.#slot;
    if (s < 0) return false;
    const w = this.#w;
    Atomics.store(w, s, SLOT_BUSY);
    if (Atomics.load(w, STATE) === OPEN) return true;
    Atomics.store(w, s, SLOT_IDLE);
    return false;
  }

  leave(): void {
    Atomics.store(this.#w, this.#slot, SLOT_IDLE);
  }

  /** Gives the slot back; enter() is false from then on. */
  release(): void {
    if (this.#slot < 0) return;
    Atomics.store(this.#w, this.#slot, SLOT_FREE);
    this.#slot = -1;
  }
}
