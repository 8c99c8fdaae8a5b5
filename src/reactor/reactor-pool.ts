// The daemon's reactors: one per CPU of its cpumask; places queues on the least-loaded one.
import { ReactorHandle } from './reactor-handle.ts';
import type { PollMode } from './poll-mode.ts';
import type { Logger } from '../log/logger.ts';
import { CpumaskError } from './cpumask.ts';
import type { GcWindowReport } from './gc-window.ts';

/**
 * A GC window nobody stops ends by itself after this long: the profiler keeps every collection's
 * record (about 2 KB each) in the reactor until stopped.
 */
export const GC_WINDOW_MAX_MS = 10 * 60_000;

export class ReactorPool {
  readonly reactors: ReactorHandle[];
  private gcWindowTimer: NodeJS.Timeout | null = null;

  constructor(cpus: readonly number[], pollMode: PollMode, logger: Logger, pin = true) {
    this.reactors = cpus.map((cpu, index) => new ReactorHandle({ index, cpu, pin, pollMode, logger }));
  }

  /** Least-loaded reactor among the given CPUs (all when omitted). */
  pick(cpus?: readonly number[]): ReactorHandle {
    const candidates = cpus ? this.reactors.filter((r) => cpus.includes(r.cpu)) : this.reactors;
    if (candidates.length === 0) {
      const have = this.reactors.map((r) => r.cpu).join(',');
      throw new CpumaskError(`cpumask selects no CPU the daemon runs reactors on (reactor CPUs: ${have})`);
    }
    let best = candidates[0];
    for (const r of candidates) if (r.load < best.load) best = r;
    return best;
  }

  /** Every reactor on the given CPUs, `first` leading. */
  all(cpus: readonly number[], first: ReactorHandle): ReactorHandle[] {
    return [first, ...this.reactors.filter((r) => r !== first && cpus.includes(r.cpu))];
  }

  cpus(): number[] {
    return this.reactors.map((r) => r.cpu);
  }

  /** Starts a GC window in every reactor thread. */
  async startGcWindows(): Promise<void> {
    await Promise.all(this.reactors.map((r) => r.startGcWindow()));
    this.clearGcWindowTimer();
    this.gcWindowTimer = setTimeout(() => {
      this.gcWindowTimer = null;
      this.stopGcWindows().catch(() => {});
    }, GC_WINDOW_MAX_MS);
    this.gcWindowTimer.unref();
  }

  private clearGcWindowTimer(): void {
    if (this.gcWindowTimer) clearTimeout(this.gcWindowTimer);
    this.gcWindowTimer = null;
  }

  /** Ends the GC windows: one report per reactor (fails with NO_GC_WINDOW when none was started). */
  async stopGcWindows(): Promise<{ reactor: number; cpu: number; gc: GcWindowReport }[]> {
    this.clearGcWindowTimer();
    return Promise.all(this.reactors.map(async (r) => ({ reactor: r.index, cpu: r.cpu, gc: await r.stopGcWindow() })));
  }

  async stop(): Promise<void> {
    this.clearGcWindowTimer();
    await Promise.all(this.reactors.map((r) => r.stop()));
  }
}
