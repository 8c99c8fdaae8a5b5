// The target's side of the GC figures: vhostd's reactors measured over the generator's window
// through its RPC socket (vhostd_reactor_gc_start / vhostd_reactor_gc_stop).
import { RpcClient } from '../rpc/rpc-client.ts';

export interface TargetReactorGc {
  reactor: number;
  cpu: number;
  seconds: number;
  collections: number;
  pauseMs: number;
  heapGrowthBytes: number;
  allocatedBytes: number;
}

interface WireReport {
  reactor: number;
  cpu: number;
  seconds: number;
  collections: number;
  gc_pause_ms: number;
  heap_growth_bytes: number;
  allocated_bytes: number;
}

export class TargetGc {
  private readonly rpc: RpcClient;

  private constructor(rpc: RpcClient) {
    this.rpc = rpc;
  }

  static async connect(socketPath: string): Promise<TargetGc> {
    return new TargetGc(await RpcClient.connect(socketPath));
  }

  async start(): Promise<void> {
    await this.rpc.call('vhostd_reactor_gc_start');
  }

  async stop(): Promise<TargetReactorGc[]> {
    const list = (await this.rpc.call('vhostd_reactor_gc_stop')) as WireReport[];
    return list.map((r) => ({
      reactor: r.reactor,
      cpu: r.cpu,
      seconds: r.seconds,
      collections: r.collections,
      pauseMs: r.gc_pause_ms,
      heapGrowthBytes: r.heap_growth_bytes,
      allocatedBytes: r.allocated_bytes,
    }));
  }

  close(): void {
    this.rpc.close();
  }
}
