// GC count, pause time and heap growth of the calling thread over a window (start .. stop).
// v8.GCProfiler records from V8's GC callbacks, synchronously and off the JS heap, so it works in
// a thread that spins and never returns to its event loop (a reactor, the load generator);
// PerformanceObserver 'gc' entries are delivered from the event loop and never arrive there.
import { GCProfiler, getHeapStatistics } from 'node:v8';
import { performance } from 'node:perf_hooks';

export interface GcWindowReport {
  seconds: number;
  /** Young- plus old-generation collections (incremental marking steps are not counted). */
  collections: number;
  /** Young-generation collections (scavenges). */
  scavenges: number;
  /** Full collections (mark-sweep-compact). */
  markCompacts: number;
  /** Time spent in GC callbacks' span, summed (ms). */
  pauseMs: number;
  heapUsedStart: number;
  heapUsedEnd: number;
  /** heapUsedEnd - heapUsedStart: negative when a collection freed more than was allocated. */
  heapGrowthBytes: number;
  /** Bytes allocated in the window: heap growth plus what the collections freed. */
  allocatedBytes: number;
}

/** V8's names for young-generation collections (Scavenge; MinorMarkSweep with --minor-ms). */
const MINOR = new Set(['Scavenge', 'MinorMarkSweep', 'MinorMarkCompact']);
const MAJOR = 'MarkSweepCompact';

/** The profile's heap statistics use camelCase names (the type declarations say snake_case). */
function usedHeap(stats: unknown): number {
  const s = stats as { usedHeapSize?: number; used_heap_size?: number };
  return s.usedHeapSize ?? s.used_heap_size ?? 0;
}

export class GcWindow {
  private profiler: GCProfiler | null = null;
  private startedAt = 0;
  private heapStart = 0;

  get running(): boolean {
    return this.profiler !== null;
  }

  /** Starts a window (a running one is discarded and restarted). */
  start(): void {
    this.profiler?.stop();
    this.profiler = new GCProfiler();
    this.heapStart = getHeapStatistics().used_heap_size;
    this.startedAt = performance.now();
    this.profiler.start();
  }

  /** Ends the window; null when none was started. */
  stop(): GcWindowReport | null {
    const p = this.profiler;
    if (!p) return null;
    this.profiler = null;
    const heapEnd = getHeapStatistics().used_heap_size;
    const seconds = (performance.now() - this.startedAt) / 1000;
    const profile = p.stop();
    let scavenges = 0;
    let markCompacts = 0;
    let pauseUs = 0;
    let freed = 0;
    for (const s of profile.statistics) {
      if (MINOR.has(s.gcType)) scavenges++;
      else if (s.gcType === MAJOR) markCompacts++;
      else continue;
      pauseUs += s.cost;
      freed += usedHeap(s.beforeGC.heapStatistics) - usedHeap(s.afterGC.heapStatistics);
    }
    const growth = heapEnd - this.heapStart;
    return {
      seconds,
      collections: scavenges + markCompacts,
      scavenges,
      markCompacts,
      pauseMs: pauseUs / 1000,
      heapUsedStart: this.heapStart,
      heapUsedEnd: heapEnd,
      heapGrowthBytes: growth,
      allocatedBytes: Math.max(0, growth + freed),
    };
  }
}
