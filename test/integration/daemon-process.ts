// Starts a real vhostd process for integration tests and talks to it over its RPC socket.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RpcClient } from '../../src/rpc/rpc-client.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
export const NODE = join(ROOT, 'node_modules/.bin/node');

export interface Daemon {
  dir: string;
  rpcPath: string;
  proc: ChildProcess;
  stderr: string[];
  call(method: string, params?: Record<string, unknown>): Promise<unknown>;
  socket(ctrlr: string): string;
  /** SIGTERM and wait; returns the exit code. */
  stop(): Promise<number | null>;
}

export interface DaemonOptions {
  /** Default: $VHOSTD_TEST_LOG_LEVEL, else info. */
  logLevel?: string;
  /**
   * Socket directory and RPC socket's home (default: a new temporary one, removed by stop()).
   * A given one is left in place: a daemon restarted on it serves the same socket paths.
   */
  dir?: string;
  /**
   * Controller sockets in this directory instead of the daemon's own fresh one (which keeps only
   * the RPC socket), and not removed at stop: a daemon started after another one crashed serves
   * the same socket paths, so QEMU can reconnect to it.
   */
  socketDir?: string;
  /** Pin reactor threads to their CPUs (default: unpinned, so tests share the machine's CPUs freely). */
  pin?: boolean;
}

export async function startDaemon(extraArgs: string[] = [], opts: DaemonOptions = {}): Promise<Daemon> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'vhostd-it-'));
  const removeDir = (): void => {
    if (opts.dir === undefined) rmSync(dir, { recursive: true, force: true });
  };
  const rpcPath = join(dir, 'rpc.sock');
  // A crashed predecessor's socket file would look like this daemon's.
  rmSync(rpcPath, { force: true });
  const socketDir = opts.socketDir ?? dir;
  const proc = spawn(NODE, [join(ROOT, 'src/cli/vhostd.ts'), '--no-default', ...(opts.pin ? [] : ['--no-pin']), '-S', socketDir, '-r', rpcPath, '--log-level', opts.logLevel ?? process.env.VHOSTD_TEST_LOG_LEVEL ?? 'info', ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stderr: string[] = [];
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => stderr.push(d));
  proc.stdout!.resume();
  let exited = false;
  proc.once('exit', () => (exited = true));
  const deadline = Date.now() + 15000;
  while (!existsSync(rpcPath)) {
    if (exited) throw new Error(`vhostd exited during start: ${stderr.join('')}`);
    if (Date.now() > deadline) throw new Error(`vhostd did not create ${rpcPath}: ${stderr.join('')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const client = await RpcClient.connect(rpcPath);
  return {
    dir,
    rpcPath,
    proc,
    stderr,
    call: (method, params) => client.call(method, params),
    socket: (ctrlr) => join(socketDir, ctrlr),
    async stop() {
      client.close();
      // Already gone (exited, or killed by a signal: then there is no exit event left to wait for).
      if (proc.exitCode !== null || proc.signalCode !== null) {
        removeDir();
        return proc.exitCode;
      }
      const code = new Promise<number | null>((resolve) => proc.once('exit', (c) => resolve(c)));
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10000);
      const c = await code;
      clearTimeout(timer);
      removeDir();
      return c;
    },
  };
}
