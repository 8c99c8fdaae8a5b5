// Picks the block engine for a channel: io_uring when the kernel lets us use it, else the
// thread-pool fallback, with the reason so the caller can warn. VHOSTD_FORCE_URING_FALLBACK=1
// (or forceFallback) forces the fallback, for tests and for kernels with a broken io_uring.
import type { IoEngine } from './io-engine.ts';
import { IoUringEngine } from './io-uring.ts';
import { IoUringUnavailableError, ioUringSupport } from './io-uring-setup.ts';
import { THREAD_POOL_DEFAULT_THREADS, ThreadPoolEngine } from './thread-pool-engine.ts';

export const FORCE_FALLBACK_ENV = 'VHOSTD_FORCE_URING_FALLBACK';
export const FALLBACK_THREADS_ENV = 'VHOSTD_URING_FALLBACK_THREADS';

export interface IoEngineOptions {
  /** Use the thread pool even when io_uring works. Default: process.env.VHOSTD_FORCE_URING_FALLBACK === '1'. */
  forceFallback?: boolean;
  /** Worker threads of the fallback. Default: VHOSTD_URING_FALLBACK_THREADS or 4. */
  threads?: number;
}

export interface SelectedIoEngine {
  engine: IoEngine;
  /** Why the fallback runs instead of io_uring; null when io_uring is in use. */
  fallbackReason: string | null;
}

function fallbackThreads(opts: IoEngineOptions): number {
  if (opts.threads !== undefined) return opts.threads;
  const env = Number(process.env[FALLBACK_THREADS_ENV]);
  return Number.isInteger(env) && env > 0 ? env : THREAD_POOL_DEFAULT_THREADS;
}

export function openIoEngine(depth: number, opts: IoEngineOptions = {}): SelectedIoEngine {
  const force = opts.forceFallback ?? process.env[FORCE_FALLBACK_ENV] === '1';
  if (force) {
    return { engine: new ThreadPoolEngine(depth, fallbackThreads(opts)), fallbackReason: `forced (${FORCE_FALLBACK_ENV}=1 or forceFallback)` };
  }
  const support = ioUringSupport();
  if (!support.available) return { engine: new ThreadPoolEngine(depth, fallbackThreads(opts)), fallbackReason: support.error.message };
  try {
    return { engine: new IoUringEngine(depth), fallbackReason: null };
  } catch (e) {
    if (!(e instanceof IoUringUnavailableError)) throw e;
    return { engine: new ThreadPoolEngine(depth, fallbackThreads(opts)), fallbackReason: e.message };
  }
}
