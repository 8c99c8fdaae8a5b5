// Per-command state of a task that runs bdev I/O: which operation, where it stands, and the links
// of the LUN's task set. Preallocated in a pool: the context is the BdevIoWaiter itself, so a
// READ or WRITE allocates nothing.
import type { BdevIoWaiter } from '../bdev/bdev.ts';
import type { ScsiTask } from './scsi-task.ts';

export const IO_OP_READ = 1;
export const IO_OP_WRITE = 2;
export const IO_OP_FLUSH = 3;
export const IO_OP_UNMAP = 4;
export const IO_OP_WRITE_SAME_UNMAP = 5;
export const IO_OP_WRITE_SAME = 6;
export const IO_OP_COMPARE_AND_WRITE = 7;
export const IO_OP_VERIFY = 8;

export const IO_STATE_FREE = 0;
/** Waiting for a conflicting command (shared scratch buffer, COMPARE AND WRITE range). */
export const IO_STATE_DEFERRED = 1;
export const IO_STATE_RUNNING = 2;
/** COMPARE AND WRITE holding its range lock, waiting for the LUN's other reactors to acknowledge it. */
export const IO_STATE_LOCKING = 3;

/** Receives the completions that arrive after the submitting call returned. */
export interface ScsiIoOwner {
  ioDone(ctx: ScsiIoContext, status: number): void;
}

export class ScsiIoContext implements BdevIoWaiter {
  readonly owner: ScsiIoOwner;
  task: ScsiTask | null = null;
  op = 0;
  state = IO_STATE_FREE;
  /** Step of the command's state machine (meaning per op). */
  phase = 0;
  /** Bumped on every release: lets a TMF tell "this task finished" from "slot reused". */
  generation = 0;
  prev: ScsiIoContext | null = null;
  next: ScsiIoContext | null = null;

  // Synchronous-completion trampoline: a completion that arrives inside the submitting call is
  // recorded here and processed by the submitter's loop (no recursion per step).
  submitting = false;
  inlineDone = false;
  inlineStatus = 0;

  lba = 0;
  blocks = 0;
  /** Progress: blocks done (WRITE SAME, VERIFY) or descriptor index (UNMAP). */
  pos = 0;
  /** Size of the step in flight, or descriptor count (UNMAP). */
  count = 0;
  fua = false;
  /** Op-specific: BYTCHK (VERIFY), zero pattern (WRITE SAME), parameter list length (UNMAP). */
  mode = 0;

  constructor(owner: ScsiIoOwner) {
    this.owner = owner;
  }

  bdevIoDone(status: number): void {
    if (this.submitting) {
      this.inlineDone = true;
      this.inlineStatus = status;
      return;
    }
    this.owner.ioDone(this, status);
  }
}

/** Free list of contexts; grows by doubling (only when a new peak queue depth is reached) up to max. */
export class ScsiIoPool {
  private readonly owner: ScsiIoOwner;
  private readonly free: ScsiIoContext[] = [];
  private total = 0;
  readonly max: number;

  constructor(owner: ScsiIoOwner, initial: number, max: number) {
    this.owner = owner;
    this.max = max;
    this.grow(initial);
  }

  private grow(n: number): void {
    for (let i = 0; i < n && this.total < this.max; i++, this.total++) this.free.push(new ScsiIoContext(this.owner));
  }

  /** A free context, or null when max contexts are in use (the caller answers TASK SET FULL). */
  acquire(): ScsiIoContext | null {
    if (this.free.length === 0) this.grow(this.total);
    return this.free.pop() ?? null;
  }

  release(ctx: ScsiIoContext): void {
    ctx.task = null;
    ctx.state = IO_STATE_FREE;
    ctx.prev = null;
    ctx.next = null;
    ctx.generation++;
    this.free.push(ctx);
  }

  get inUse(): number {
    return this.total - this.free.length;
  }
}

/** The LUN's task set: every task holding a context, in arrival order (intrusive list). */
export class ScsiTaskSet {
  head: ScsiIoContext | null = null;
  tail: ScsiIoContext | null = null;
  size = 0;

  append(ctx: ScsiIoContext): void {
    ctx.prev = this.tail;
    ctx.next = null;
    if (this.tail) this.tail.next = ctx;
    else this.head = ctx;
    this.tail = ctx;
    this.size++;
  }

  remove(ctx: ScsiIoContext): void {
    if (ctx.prev) ctx.prev.next = ctx.next;
    else this.head = ctx.next;
    if (ctx.next) ctx.next.prev = ctx.prev;
    else this.tail = ctx.prev;
    ctx.prev = null;
    ctx.next = null;
    this.size--;
  }
}
