// Shared by the rpc tests: a fake VhostApi over a real BdevRegistry, a server on a temp socket,
// and a raw-socket exchange that shows exactly what the server wrote.
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BdevRegistry } from '../../../src/bdev/bdev-registry.ts';
import { createRpcServer, type RpcServer } from '../../../src/rpc/rpc-server.ts';
import type { ControllerInfo, VhostApi } from '../../../src/rpc/vhost-api.ts';

function fail(code: string, message: string, errno?: number): never {
  throw Object.assign(new Error(message), errno === undefined ? { code } : { code, errno });
}

/** In-memory controllers; claims bdevs through the registry like the real controller layer. */
export class FakeVhostApi implements VhostApi {
  readonly socketDir: string;
  readonly bdevs: BdevRegistry;
  readonly ctrlrs = new Map<string, { cpumask: string; targets: Map<number, string> }>();

  constructor(socketDir: string, bdevs: BdevRegistry) {
    this.socketDir = socketDir;
    this.bdevs = bdevs;
  }

  async createScsiController(ctrlr: string, cpumask: string | undefined): Promise<void> {
    if (this.ctrlrs.has(ctrlr)) fail('CONTROLLER_EXISTS', `controller '${ctrlr}' already exists`, -17);
    if (cpumask !== undefined && !/^(0x)?[0-9a-f]+$/i.test(cpumask)) fail('BAD_CPUMASK', `bad cpumask '${cpumask}'`, -22);
    this.ctrlrs.set(ctrlr, { cpumask: cpumask ?? '0x1', targets: new Map() });
  }

  readonly blk = new Map<string, { devName: string; readonly: boolean }>();

  async createBlkController(ctrlr: string, devName: string, opts: { readonly: boolean; packedRing: boolean; cpumask?: string }): Promise<void> {
    if (this.ctrlrs.has(ctrlr) || this.blk.has(ctrlr)) fail('CONTROLLER_EXISTS', `controller '${ctrlr}' already exists`, -17);
    this.bdevs.claim(devName, `vhost-blk ${ctrlr}`);
    this.blk.set(ctrlr, { devName, readonly: opts.readonly });
  }

  readonly coalescing = new Map<string, [number, number]>();

  async setCoalescing(ctrlr: string, delayBaseUs: number, iopsThreshold: number): Promise<void> {
    this.#get(ctrlr);
    this.coalescing.set(ctrlr, [delayBaseUs, iopsThreshold]);
  }

  #get(ctrlr: string) {
    const c = this.ctrlrs.get(ctrlr);
    // No errno: the RPC layer maps the code by its suffix.
    if (!c) fail('CONTROLLER_NOT_FOUND', `controller '${ctrlr}' does not exist`);
    return c;
  }

  async addScsiTarget(ctrlr: string, scsiTargetNum: number, bdevName: string): Promise<number> {
    const c = this.#get(ctrlr);
    let num = scsiTargetNum;
    if (num === -1) for (num = 0; c.targets.has(num); num++);
    if (num < 0 || num >= 8) fail('BAD_TARGET_NUM', `scsi_target_num ${num} out of range`, -22);
    if (c.targets.has(num)) fail('TARGET_EXISTS', `target ${num} exists`, -17);
    const bdev = this.bdevs.claim(bdevName, `vhost-scsi ${ctrlr}`);
    c.targets.set(num, bdev.name);
    return num;
  }

  async removeScsiTarget(ctrlr: string, scsiTargetNum: number): Promise<void> {
    const c = this.#get(ctrlr);
    const bdev = c.targets.get(scsiTargetNum);
    if (bdev === undefined) fail('TARGET_NOT_FOUND', `controller ${ctrlr} has no target ${scsiTargetNum}`, -19);
    c.targets.delete(scsiTargetNum);
    this.bdevs.release(bdev, `vhost-scsi ${ctrlr}`);
  }

  getControllers(name?: string): ControllerInfo[] {
    return [...this.ctrlrs]
      .filter(([n]) => name === undefined || n === name)
      .map(([n, c]) => ({
        ctrlr: n,
        cpumask: c.cpumask,
        delay_base_us: 0,
        iops_threshold: 60000,
        socket: join(this.socketDir, n),
        sessions: [],
        backend_specific: {
          scsi: [...c.targets].map(([num, bdev]) => ({ scsi_dev_num: num, id: num, target_name: `Target ${num}`, luns: [{ id: 0, bdev_name: bdev }] })),
        },
      }));
  }

  async deleteController(ctrlr: string): Promise<void> {
    const c = this.#get(ctrlr);
    if (c.targets.size > 0) fail('CONTROLLER_IN_USE', `controller '${ctrlr}' still has targets`, -16);
    this.ctrlrs.delete(ctrlr);
  }

  configCalls(): { method: string; params: Record<string, unknown> }[] {
    const out: { method: string; params: Record<string, unknown> }[] = [];
    for (const [n, c] of this.ctrlrs) {
      out.push({ method: 'vhost_create_scsi_controller', params: { ctrlr: n, cpumask: c.cpumask } });
      for (const [num, bdev] of c.targets) out.push({ method: 'vhost_scsi_controller_add_target', params: { ctrlr: n, scsi_target_num: num, bdev_name: bdev } });
    }
    return out;
  }
}

export interface Harness {
  dir: string;
  socketPath: string;
  bdevs: BdevRegistry;
  vhost: FakeVhostApi;
  server: RpcServer;
  stop(): Promise<void>;
}

export async function startServer(): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'vhostd-rpc-'));
  const socketPath = join(dir, 'rpc.sock');
  const bdevs = new BdevRegistry();
  const vhost = new FakeVhostApi(dir, bdevs);
  const server = createRpcServer({ socketPath, bdevs, vhost });
  await server.start();
  return {
    dir,
    socketPath,
    bdevs,
    vhost,
    server,
    async stop() {
      await server.close();
      for (const b of bdevs.list()) {
        if (b.claimedBy !== null) bdevs.release(b.name);
        bdevs.unregister(b.name);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Writes the chunks (with a short pause between them) on a fresh connection and collects every
 * newline-terminated response until `count` arrived or the server closed the connection.
 */
export function rawExchange(socketPath: string, chunks: (string | Uint8Array)[], count: number): Promise<{ responses: unknown[]; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socketPath);
    let data = '';
    const responses: unknown[] = [];
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ responses, closed });
    };
    const timer = setTimeout(() => finish(false), 2000);
    s.on('error', reject);
    s.on('data', (d) => {
      data += d.toString('utf8');
      let nl: number;
      while ((nl = data.indexOf('\n')) >= 0) {
        responses.push(JSON.parse(data.slice(0, nl)));
        data = data.slice(nl + 1);
      }
      if (responses.length >= count) setTimeout(() => finish(false), 30);
    });
    s.on('close', () => finish(true));
    s.on('connect', async () => {
      for (const c of chunks) {
        s.write(c);
        await new Promise((r) => setTimeout(r, 5));
      }
      if (count === 0) setTimeout(() => finish(false), 100);
    });
  });
}
