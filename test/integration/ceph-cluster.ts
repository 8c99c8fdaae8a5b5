// A real single-node Ceph cluster for the tests, on 127.0.0.1 only: one ceph-mon on a free port,
// one ceph-osd on BlueStore in a sparse 4 GiB file (it survives kill -9, which memstore does
// not), auth none, pool "rbd" of size 1. No mgr: RBD I/O, images and locks need none.
// Bootstrapped the manual-deployment way (monmaptool + ceph-mon --mkfs, ceph osd new +
// ceph-osd --mkfs), without systemd. About 10 s to start on an idle machine.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './nbd-servers.ts';

/** Whether this machine has what the cluster needs (.ci/run installs it). */
export function cephAvailable(): boolean {
  return ['ceph-mon', 'ceph-osd', 'ceph', 'rbd', 'monmaptool'].every((b) => spawnSync('sh', ['-c', `command -v ${b}`]).status === 0);
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env, timeout: timeoutMs, maxBuffer: 64 << 20, encoding: 'latin1' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

export class CephCluster {
  /** Short: admin sockets live under it (a Unix socket path has 107 bytes). */
  readonly dir: string;
  readonly conf: string;
  port = 0;
  readonly #env: NodeJS.ProcessEnv;
  #mon: ChildProcess | null = null;
  #osd: ChildProcess | null = null;
  #osdId = 0;

  constructor() {
    this.dir = mkdtempSync('/tmp/vc-');
    this.conf = join(this.dir, 'ceph.conf');
    this.#env = { ...process.env, CEPH_CONF: this.conf };
  }

  /** mon_host for a client's config_param. */
  get monHost(): string {
    return `v2:127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const d = this.dir;
    this.port = await freePort();
    const fsid = randomUUID();
    for (const sub of ['run', 'log', 'mon.a', 'osd.0']) mkdirSync(join(d, sub), { recursive: true });
    writeFileSync(
      this.conf,
      [
        '[global]',
        `fsid = ${fsid}`,
        `mon_host = ${this.monHost}`,
        'public_addr = 127.0.0.1',
        'auth_cluster_required = none',
        'auth_service_required = none',
        'auth_client_required = none',
        'auth_allow_insecure_global_id_reclaim = false',
        'ms_bind_ipv4 = true',
        'ms_bind_ipv6 = false',
        `run_dir = ${d}/run`,
        `admin_socket = ${d}/run/$name.asok`,
        `log_file = ${d}/log/$name.log`,
        'osd_pool_default_size = 1',
        'osd_pool_default_min_size = 1',
        'mon_allow_pool_size_one = true',
        'mon_warn_on_pool_no_redundancy = false',
        'osd_crush_chooseleaf_type = 0',
        'osd_pool_default_pg_autoscale_mode = off',
        'mon_allow_pool_delete = true',
        'mon_data_avail_warn = 2',
        'mon_data_avail_crit = 1',
        // A restarted OSD is noticed at once (it tells the mon), a killed one within seconds.
        'osd_heartbeat_grace = 6',
        // PG read leases are grace x this ratio. An OSD stalled past its lease (SIGSTOP in the
        // hung-OSD test, which on a busy machine lasts longer than the 3 s op timeout) leaves its
        // PGs laggy, and on a single OSD they stayed so (reads delayed for minutes). 12 s covers
        // the stall; a restarted OSD waits at most that long before serving reads.
        'osd_pool_default_read_lease_ratio = 2',
        '[mon]',
        `mon_data = ${d}/mon.$id`,
        '[osd]',
        `osd_data = ${d}/osd.$id`,
        'osd_objectstore = bluestore',
        'bluestore_block_create = true',
        'bluestore_block_size = 4294967296',
        'bluestore_block_preallocate_file = false',
        'bluestore_cache_autotune = false',
        'bluestore_cache_size = 67108864',
        'bluestore_fsck_on_mkfs = false',
        'osd_memory_target = 536870912',
        'osd_crush_initial_weight = 1',
        '',
      ].join('\n'),
    );
    const env = this.#env;
    await run('ceph-authtool', ['--create-keyring', join(d, 'mon.keyring'), '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *'], env, 30_000);
    await run('monmaptool', ['--create', '--fsid', fsid, '--addv', 'a', `[v2:127.0.0.1:${this.port}]`, join(d, 'monmap')], env, 30_000);
    await run('ceph-mon', ['-i', 'a', '--mkfs', '--monmap', join(d, 'monmap'), '--keyring', join(d, 'mon.keyring')], env, 60_000);
    this.#mon = this.#daemon('ceph-mon', ['-i', 'a', '-f']);
    await this.#until(async () => (await this.ceph(['-s'], 5_000)).includes('mon:'), 60_000, 'the mon to answer');
    const uuid = randomUUID();
    this.#osdId = Number((await this.ceph(['osd', 'new', uuid])).trim());
    await run('ceph-osd', ['-i', String(this.#osdId), '--mkfs', '--osd-uuid', uuid], env, 120_000);
    await this.startOsd();
    await this.ceph(['osd', 'pool', 'create', 'rbd', '8', '8']);
    await this.rbd(['pool', 'init', 'rbd'], 120_000);
  }

  #daemon(cmd: string, args: string[]): ChildProcess {
    const child = spawn(cmd, args, { env: this.#env, stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.resume();
    return child;
  }

  async #until(probe: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        if (await probe()) return;
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`waiting for ${what}: ${(e as Error).message}`);
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(300);
    }
  }

  /** Starts the OSD and waits until the mon has it up. */
  async startOsd(): Promise<void> {
    this.#osd = this.#daemon('ceph-osd', ['-i', String(this.#osdId), '-f']);
    await this.#until(async () => {
      const s = JSON.parse(await this.ceph(['osd', 'dump', '-f', 'json'], 10_000)) as { osds: { osd: number; up: number }[] };
      return s.osds.some((o) => o.osd === this.#osdId && o.up === 1);
    }, 90_000, 'the OSD to be up');
  }

  /** Ends the OSD: SIGKILL is a crash (BlueStore keeps what it acknowledged). */
  async stopOsd(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const osd = this.#osd;
    this.#osd = null;
    if (!osd || osd.exitCode !== null) return;
    const exited = new Promise((r) => osd.once('exit', r));
    osd.kill(signal);
    await exited;
  }

  /** Process ids of the running mon and OSD (a benchmark pins them). */
  get pids(): number[] {
    return [this.#mon, this.#osd].filter((p): p is ChildProcess => p !== null && p.exitCode === null && p.pid !== undefined).map((p) => p.pid as number);
  }

  /**
   * SIGSTOP/SIGCONT: an OSD that hangs (no reply, no reset). Returns once every thread of it is
   * stopped (or running again): the signal takes effect only as each thread is next scheduled,
   * and on a busy machine a running OSD thread would otherwise still serve a request sent just after.
   */
  async pauseOsd(paused: boolean): Promise<void> {
    const p = this.#osd;
    if (!p || p.pid === undefined) return;
    p.kill(paused ? 'SIGSTOP' : 'SIGCONT');
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      let stopped = 0;
      let all = 0;
      for (const t of readdirSync(`/proc/${p.pid}/task`)) {
        try {
          const st = readFileSync(`/proc/${p.pid}/task/${t}/stat`, 'utf8');
          all++;
          if (st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3) === 'T') stopped++;
        } catch {
          // A thread that just ended.
        }
      }
      if (paused ? stopped === all : stopped === 0) return;
      await sleep(5);
    }
    throw new Error(`ceph-osd did not ${paused ? 'stop' : 'continue'} within 10 s`);
  }

  ceph(args: string[], timeoutMs = 60_000): Promise<string> {
    return run('ceph', ['--connect-timeout', String(Math.ceil(timeoutMs / 1000)), ...args], this.#env, timeoutMs + 5_000);
  }

  rbd(args: string[], timeoutMs = 60_000): Promise<string> {
    return run('rbd', args, this.#env, timeoutMs);
  }

  async stop(): Promise<void> {
    for (const p of [this.#osd, this.#mon]) {
      if (!p || p.exitCode !== null) continue;
      p.kill('SIGCONT');
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGKILL');
      await exited;
    }
    this.#osd = this.#mon = null;
    // VHOSTD_KEEP_CEPH_LOGS=DIR keeps each cluster's mon and OSD logs (a failed run's evidence).
    if (process.env.VHOSTD_KEEP_CEPH_LOGS) cpSync(join(this.dir, 'log'), join(process.env.VHOSTD_KEEP_CEPH_LOGS, `ceph-${Date.now()}`), { recursive: true });
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function startCephCluster(): Promise<CephCluster> {
  const c = new CephCluster();
  try {
    await c.start();
  } catch (e) {
    await c.stop();
    throw e;
  }
  return c;
}
