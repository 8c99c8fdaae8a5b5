// vhostd_reactor_gc_* (vhostd's own methods, not SPDK's): a GC window on every reactor thread, to
// show that the data path allocates nothing (collections and heap growth while I/O runs).
import type { MethodTable } from './method-table.ts';
import type { GcWindowReport } from '../reactor/gc-window.ts';
import { RpcError, SPDK_JSONRPC_ERROR_INVALID_PARAMS } from './rpc-error.ts';

/** What the methods need from the reactors (implemented by ReactorPool). */
export interface ReactorGcApi {
  startGcWindows(): Promise<void>;
  /** One report per reactor, in reactor order; fails with NO_GC_WINDOW when none was started. */
  stopGcWindows(): Promise<{ reactor: number; cpu: number; gc: GcWindowReport }[]>;
}

async function stopped(reactors: ReactorGcApi): ReturnType<ReactorGcApi['stopGcWindows']> {
  try {
    return await reactors.stopGcWindows();
  } catch (e) {
    if ((e as { code?: unknown }).code !== 'NO_GC_WINDOW') throw e;
    const detail = 'no GC window is running on the reactors: call vhostd_reactor_gc_start first (a window ends by itself after 10 minutes)';
    throw new RpcError('GC_WINDOW_NOT_STARTED', SPDK_JSONRPC_ERROR_INVALID_PARAMS, detail, { code: 'GC_WINDOW_NOT_STARTED', detail });
  }
}

export function registerReactorMethods(table: MethodTable, reactors: ReactorGcApi): void {
  table.register(
    'vhostd_reactor_gc_start',
    async () => {
      await reactors.startGcWindows();
      return true;
    },
    'invalid-params',
  );

  table.register(
    'vhostd_reactor_gc_stop',
    async () =>
      (await stopped(reactors)).map(({ reactor, cpu, gc }) => ({
        reactor,
        cpu,
        seconds: gc.seconds,
        collections: gc.collections,
        scavenges: gc.scavenges,
        mark_compacts: gc.markCompacts,
        gc_pause_ms: gc.pauseMs,
        heap_used_start: gc.heapUsedStart,
        heap_used_end: gc.heapUsedEnd,
        heap_growth_bytes: gc.heapGrowthBytes,
        allocated_bytes: gc.allocatedBytes,
      })),
    'invalid-params',
  );
}
