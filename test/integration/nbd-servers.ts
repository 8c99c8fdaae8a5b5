// Real NBD servers for the tests, on loopback only: qemu-nbd over a raw image file and nbdkit's
// memory plugin, on a Unix socket or a free 127.0.0.1 port. Each is ready when its pid file is
// written (both write it only once the export is live); stop() and kill() end it, start() again
// brings it back on the same address (what a server restart looks like to a client).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export type NbdServerKind = 'qemu-nbd' | 'nbdkit';

export interface NbdServerOptions {
  kind: NbdServerKind;
  dir: string;
  /** 'unix' (default) or 'tcp' (a free port on 127.0.0.1). */
  transport?: 'unix' | 'tcp';
  /** qemu-nbd: the raw image it serves. */
  image?: string;
  /** nbdkit: the memory plugin's size (default 64M), or a full plugin argument list. */
  size?: string;
  pluginArgs?: string[];
  /** Arguments before the plugin / image (--filter=..., -x NAME, --no-sr ...). */
  extraArgs?: string[];
  /** nbdkit: filter and plugin parameters, after the plugin (error=EIO ...). */
  params?: string[];
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export class NbdServer {
  readonly opts: NbdServerOptions;
  readonly socket: string | null;
  port = 0;
  readonly pidFile: string;
  #child: ChildProcess | null = null;
  #stderr: string[] = [];
  #n = 0;

  constructor(opts: NbdServerOptions) {
    this.opts = opts;
    this.socket = (opts.transport ?? 'unix') === 'unix' ? join(opts.dir, `${opts.kind}.sock`) : null;
    this.pidFile = join(opts.dir, `${opts.kind}.pid`);
  }

  /** The address parameters of bdev_nbd_client_create. */
  get address(): { socket: string } | { host: string; port: number } {
    return this.socket !== null ? { socket: this.socket } : { host: '127.0.0.1', port: this.port };
  }

  get stderr(): string {
    return this.#stderr.join('');
  }

  #args(): [string, string[]] {
    const o = this.opts;
    const extra = o.extraArgs ?? [];
    if (o.kind === 'qemu-nbd') {
      if (!o.image) throw new Error('qemu-nbd needs an image');
      const where = this.socket !== null ? ['-k', this.socket] : ['-b', '127.0.0.1', '-p', String(this.port)];
      // -t: stay up when a client leaves (clients reconnect); -e 0: any number of connections.
      return ['qemu-nbd', ['-f', 'raw', '-t', '-e', '0', ...where, `--pid-file=${this.pidFile}`, ...extra, o.image]];
    }
    const where = this.socket !== null ? ['-U', this.socket] : ['-i', '127.0.0.1', '-p', String(this.port)];
    const plugin = o.pluginArgs ?? ['memory', `size=${o.size ?? '64M'}`];
    return ['nbdkit', ['-f', '--exit-with-parent', ...where, '-P', this.pidFile, ...extra, ...plugin, ...(o.params ?? [])]];
  }

  async start(): Promise<void> {
    if (this.#child) throw new Error(`${this.opts.kind} already running`);
    if (this.socket === null && this.port === 0) this.port = await freePort();
    rmSync(this.pidFile, { force: true });
    if (this.socket !== null) rmSync(this.socket, { force: true });
    const [cmd, args] = this.#args();
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const n = ++this.#n;
    child.stderr?.on('data', (b: Buffer) => this.#stderr.push(`[${n}] ${b.toString()}`));
    this.#child = child;
    let exited: string | null = null;
    child.once('exit', (code, sig) => {
      exited = `exited with ${code ?? sig}`;
      if (this.#child === child) this.#child = null;
    });
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (existsSync(this.pidFile) && readFileSync(this.pidFile, 'utf8').trim() !== '') return;
      if (exited !== null) throw new Error(`${cmd} ${args.join(' ')} ${exited}: ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`${cmd} not ready within 15 s: ${this.stderr}`);
      await sleep(20);
    }
  }

  /** Ends the server with `signal` (SIGKILL after 3 s) and waits for it to exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.#child;
    if (!child) return;
    const gone = new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
    child.kill(signal);
    // nbdkit waits for its clients to leave before it exits on SIGTERM.
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await gone;
    clearTimeout(timer);
    this.#child = null;
    // nbdkit leaves its socket behind.
    if (this.socket !== null) rmSync(this.socket, { force: true });
  }

  kill(): Promise<void> {
    return this.stop('SIGKILL');
  }
}

export async function startNbdServer(opts: NbdServerOptions): Promise<NbdServer> {
  const s = new NbdServer(opts);
  await s.start();
  return s;
}
