// What the load generator drives: a device reached through the TypeScript front-end.
// Slots are preallocated request objects; nothing here allocates per I/O.

export interface IoSlot {
  /** Index unique across the target's slots (for per-slot bookkeeping arrays). */
  readonly benchIndex: number;
  /** Request queue the slot belongs to. */
  readonly queue: number;
  /** The slot's data buffer in guest memory (at least bs bytes). */
  readonly data: Uint8Array;
}

export interface IoTarget {
  readonly queues: number;
  readonly slotsPerQueue: number;
  readonly blockSize: number;
  readonly capacityBytes: number;
  /** Every slot, indexed by benchIndex. */
  readonly slots: readonly IoSlot[];
  acquire(queue: number): IoSlot | null;
  /** Fills the request (read or write of len bytes at offset) and adds it to the ring. */
  submit(slot: IoSlot, write: boolean, offset: number, len: number): boolean;
  /** Makes submitted requests visible and notifies the device if it wants kicks. */
  kick(queue: number): void;
  /** Completed slots land in completed[0, n); returns n. */
  reap(queue: number): number;
  readonly completed: IoSlot[];
  /** Whether the completed request succeeded (call before release). */
  ok(slot: IoSlot): boolean;
  release(slot: IoSlot): void;
  /** Interrupt mode: asks the device to signal completions on every queue's call eventfd. */
  enableInterrupts(): void;
  /** Interrupt mode: sleeps until a call eventfd is signalled or timeoutMs passes (returns at once if completions are pending). */
  waitForInterrupt(timeoutMs: number): void;
  /** Pid of the process serving the socket. */
  targetPid(): number;
  close(): Promise<void>;
}
