// Long control-plane operations (inflate, decouple, clearing a store) and their progress, for
// vhostd_get_operations and vhostctl's progress bar. Finished ones are kept for a while so a
// client polling slowly still sees how they ended.

export type OperationState = 'running' | 'done' | 'failed';

export interface OperationInfo {
  id: number;
  operation: string;
  /** What it works on (an lvol alias, a store name). */
  target: string;
  state: OperationState;
  done: number;
  total: number;
  percent: number;
  started_at: string;
  elapsed_ms: number;
  error?: string;
}

const KEEP_FINISHED = 32;

class Operation {
  readonly id: number;
  readonly operation: string;
  readonly target: string;
  readonly started = Date.now();
  finished = 0;
  state: OperationState = 'running';
  done = 0;
  total = 0;
  error: string | undefined;
  constructor(id: number, operation: string, target: string) {
    this.id = id;
    this.operation = operation;
    this.target = target;
  }
  info(): OperationInfo {
    const percent = this.state === 'done' ? 100 : this.total > 0 ? Math.floor((this.done * 1000) / this.total) / 10 : 0;
    const out: OperationInfo = {
      id: this.id, operation: this.operation, target: this.target, state: this.state, done: this.done, total: this.total,
      percent, started_at: new Date(this.started).toISOString(), elapsed_ms: (this.finished || Date.now()) - this.started,
    };
    if (this.error !== undefined) out.error = this.error;
    return out;
  }
}

export class OperationTracker {
  #next = 1;
  readonly #ops: Operation[] = [];

  /** Runs fn, exposing its progress callback's figures while it runs. */
  async run<T>(operation: string, target: string, fn: (progress: (done: number, total: number) => void) => Promise<T>): Promise<T> {
    const op = new Operation(this.#next++, operation, target);
    this.#ops.push(op);
    try {
      const r = await fn((done, total) => {
        op.done = done;
        op.total = total;
      });
      op.state = 'done';
      return r;
    } catch (e) {
      op.state = 'failed';
      op.error = (e as Error).message ?? String(e);
      throw e;
    } finally {
      op.finished = Date.now();
      const finished = this.#ops.filter((o) => o.state !== 'running');
      for (const o of finished.slice(0, Math.max(0, finished.length - KEEP_FINISHED))) this.#ops.splice(this.#ops.indexOf(o), 1);
    }
  }

  list(id?: number): OperationInfo[] {
    return this.#ops.filter((o) => id === undefined || o.id === id).map((o) => o.info());
  }
}
