// Connections to Ceph clusters (rados_t), main thread only. A registered cluster
// (bdev_rbd_register_cluster) is one connection shared by every RBD bdev that names it; a bdev
// created without cluster_name gets a private one from its user_id and config, closed with it.
// Each connection costs librados a dozen or more threads; core_mask pins the threads it started.
import { readdirSync, readFileSync } from 'node:fs';
import { RbdError, rbdCallError } from './rbd-error.ts';
import { componentLogger } from '../../log/logger.ts';
import { callAsync, loadLibrbd } from '../../sys/librbd.ts';
import { pinThread } from '../../sys/affinity.ts';

const log = componentLogger('bdev_rbd');

/** rados_connect is bounded by client_mount_timeout; this is ours unless the config sets one. */
const DEFAULT_MOUNT_TIMEOUT_SEC = '30';

export interface RbdClusterOptions {
  name: string;
  userId?: string;
  configParam?: Record<string, string>;
  configFile?: string;
  keyFile?: string;
  /** As given (info, save_config); the RPC layer parses it into cpus. */
  coreMask?: string;
  cpus?: number[];
}

/** Every connected cluster of the process, registered or private: what shutdown closes. */
const live = new Set<RadosCluster>();

export class RadosCluster {
  readonly name: string;
  readonly options: RbdClusterOptions;
  /** Registered by RPC (kept in save_config), or private to one bdev. */
  readonly registered: boolean;
  handle: bigint = 0n;
  instanceId = 0;
  fsid = '';
  /** Bdevs using it. */
  users = 0;
  /** Images of deleted bdevs still closing: the connection must outlive them. */
  readonly closing = new Set<Promise<unknown>>();

  constructor(options: RbdClusterOptions, registered: boolean) {
    this.name = options.name;
    this.options = options;
    this.registered = registered;
  }

  /** Creates the handle, applies the configuration and connects. */
  async connect(): Promise<void> {
    const l = loadLibrbd();
    const o = this.options;
    const out: unknown[] = [null];
    const user = o.userId ?? 'admin';
    let r = l.rados_create2(out, 'ceph', `client.${user}`, 0) as number;
    if (r < 0) throw rbdCallError('RBD_CONNECT_FAILED', r, `rados_create2 for client.${user}`);
    const h = out[0] as bigint;
    try {
      // No file given: ceph.conf is read where Ceph looks for it, and its absence is fine.
      r = l.rados_conf_read_file(h, o.configFile ?? null) as number;
      if (r < 0 && o.configFile !== undefined) throw rbdCallError('RBD_INVALID_CONFIG', r, `reading config_file ${o.configFile}`);
      const set = (k: string, v: string): void => {
        const rc = l.rados_conf_set(h, k, v) as number;
        if (rc < 0) throw rbdCallError('RBD_INVALID_CONFIG', rc, `Ceph option ${k}=${v}`);
      };
      const given = o.configParam ?? {};
      if (o.keyFile !== undefined) set('keyring', o.keyFile);
      if (!('client_mount_timeout' in given)) set('client_mount_timeout', DEFAULT_MOUNT_TIMEOUT_SEC);
      // librados' own log lines would land in the daemon's stderr, which carries JSON logs.
      if (!('log_to_stderr' in given)) set('log_to_stderr', 'false');
      if (!('err_to_stderr' in given)) set('err_to_stderr', 'false');
      for (const [k, v] of Object.entries(given)) set(k, v);
      const before = o.cpus !== undefined && o.cpus.length > 0 ? threadIds() : null;
      r = await callAsync<number>(l.rados_connect, h);
      if (r < 0) throw rbdCallError('RBD_CONNECT_FAILED', r, `connecting to the cluster as client.${user}`);
      if (before) this.#pinNewThreads(before, o.cpus as number[]);
      this.handle = h;
      live.add(this);
      this.instanceId = Number(l.rados_get_instance_id(h));
      const fsid = new Uint8Array(37);
      if ((l.rados_cluster_fsid(h, fsid, 37) as number) >= 0) this.fsid = Buffer.from(fsid.subarray(0, 36)).toString('latin1');
      log.info({ cluster: this.name, user: `client.${user}`, fsid: this.fsid, instance: this.instanceId }, 'connected to the Ceph cluster');
    } catch (e) {
      l.rados_shutdown(h);
      throw e;
    }
  }

  /** Threads librados started during connect go to core_mask's CPUs. */
  #pinNewThreads(before: Set<number>, cpus: number[]): void {
    let pinned = 0;
    for (const tid of threadIds()) {
      if (before.has(tid) || threadName(tid).startsWith('libuv-worker')) continue;
      pinThread(tid, cpus);
      pinned++;
    }
    log.info({ cluster: this.name, core_mask: this.options.coreMask, threads: pinned }, "librados' threads pinned");
  }

  /** Waits for images still closing, then disconnects. */
  async shutdown(): Promise<void> {
    await Promise.allSettled([...this.closing]);
    if (this.handle === 0n) return;
    const h = this.handle;
    this.handle = 0n;
    live.delete(this);
    await callAsync(loadLibrbd().rados_shutdown, h);
  }

  info(): Record<string, unknown> {
    const o = this.options;
    const r: Record<string, unknown> = { cluster_name: this.name, user_id: o.userId ?? 'admin' };
    if (o.configParam) r.config_param = { ...o.configParam };
    if (o.configFile !== undefined) r.config_file = o.configFile;
    if (o.keyFile !== undefined) r.key_file = o.keyFile;
    if (o.coreMask !== undefined) r.core_mask = o.coreMask;
    r.fsid = this.fsid;
    r.instance_id = this.instanceId;
    r.bdevs = this.users;
    return r;
  }
}

function threadIds(): Set<number> {
  return new Set(readdirSync('/proc/self/task').map(Number));
}

function threadName(tid: number): string {
  try {
    return readFileSync(`/proc/self/task/${tid}/comm`, 'latin1').trim();
  } catch {
    return '';
  }
}

/** The clusters registered by RPC. */
export class RbdClusterRegistry {
  readonly #clusters = new Map<string, RadosCluster>();

  get(name: string): RadosCluster | undefined {
    return this.#clusters.get(name);
  }

  list(): RadosCluster[] {
    return [...this.#clusters.values()];
  }

  async register(options: RbdClusterOptions): Promise<RadosCluster> {
    if (typeof options.name !== 'string' || options.name.length === 0) throw new RbdError('RBD_INVALID_CONFIG', 'cluster name must not be empty');
    if (this.#clusters.has(options.name)) throw new RbdError('RBD_CLUSTER_EXISTS', `cluster '${options.name}' is already registered`);
    const c = new RadosCluster(options, true);
    // Taken before connecting, so a second register of the name while this one connects fails.
    this.#clusters.set(options.name, c);
    try {
      await c.connect();
    } catch (e) {
      this.#clusters.delete(options.name);
      throw e;
    }
    return c;
  }

  require(name: string): RadosCluster {
    const c = this.#clusters.get(name);
    if (!c || c.handle === 0n) throw new RbdError('RBD_CLUSTER_NOT_FOUND', `cluster '${name}' is not registered (bdev_rbd_register_cluster)`);
    return c;
  }

  async unregister(name: string): Promise<void> {
    const c = this.require(name);
    // Bdevs just deleted close their images first.
    await Promise.allSettled([...c.closing]);
    if (c.users > 0) throw new RbdError('RBD_CLUSTER_BUSY', `cluster '${name}' is used by ${c.users} RBD bdev(s): delete them first`);
    this.#clusters.delete(name);
    await c.shutdown();
  }
}

/**
 * Daemon shutdown: waits for images still closing and disconnects every cluster, for at most
 * timeoutMs. False when that did not finish (a cluster out of reach: librados would block the
 * process's exit, see sys/hard-exit.ts); true when nothing is left.
 */
export async function shutdownRbdClusters(timeoutMs: number): Promise<boolean> {
  if (live.size === 0) return true;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((r) => (timer = setTimeout(() => r(false), timeoutMs)));
  const done = Promise.allSettled([...live].map((c) => c.shutdown())).then(() => true);
  const clean = await Promise.race([done, timedOut]);
  clearTimeout(timer);
  if (!clean) log.warn({ clusters: [...live].map((c) => c.name), timeoutMs }, 'Ceph clusters did not disconnect in time; exiting without waiting for librados');
  return clean;
}
