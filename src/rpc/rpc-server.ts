// JSON-RPC 2.0 server on a Unix socket (control plane: node:net). Several clients at once; each
// connection's requests run one after another, in order, as a client like rpc.py expects.
import net from 'node:net';
import { lstatSync, rmSync, unlinkSync } from 'node:fs';
import type { BdevRegistry } from '../bdev/bdev-registry.ts';
import { componentLogger, type Logger } from '../log/logger.ts';
import type { MallocHugepages } from '../bdev/modules/malloc.ts';
import { JsonSplitError, JsonStreamSplitter } from './json-stream-splitter.ts';
import type { MethodTable } from './method-table.ts';
import { dispatchMessage, type RpcCaller } from './rpc-dispatch.ts';
import { parseError, RpcError } from './rpc-error.ts';
import type { LvolModule } from '../lvol/lvol-module.ts';
import type { VhostApi } from './vhost-api.ts';
import type { ReactorGcApi } from './reactor-methods.ts';
import { createMethodTable } from './vhostd-methods.ts';
import { publishListeningSocket, stagingSocketPath } from '../sys/unix-socket.ts';

export const DEFAULT_RPC_SOCKET = '/var/tmp/vhostd.sock';
/** Largest single request; SPDK's receive buffer is bounded too. */
export const DEFAULT_MAX_REQUEST_BYTES = 32 * 1024 * 1024;
/** Requests parsed but not yet run on one connection before we stop reading from it. */
const MAX_QUEUED = 64;

export class RpcServerError extends Error {
  readonly code: 'RPC_SOCKET_IN_USE' | 'RPC_SOCKET_PATH_EXISTS' | 'RPC_LISTEN_FAILED' | 'RPC_ALREADY_STARTED';
  constructor(code: RpcServerError['code'], message: string) {
    super(message);
    this.name = 'RpcServerError';
    this.code = code;
  }
}

type Queued = string | RpcError;

class RpcConnection {
  readonly #socket: net.Socket;
  readonly #caller: RpcCaller;
  readonly #logger: Logger;
  readonly #splitter: JsonStreamSplitter;
  readonly #queue: Queued[] = [];
  #busy = false;
  #closed = false;
  #broken = false;

  constructor(socket: net.Socket, caller: RpcCaller, logger: Logger, maxRequestBytes: number) {
    this.#socket = socket;
    this.#caller = caller;
    this.#logger = logger;
    this.#splitter = new JsonStreamSplitter(maxRequestBytes);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (e) => this.#logger.debug({ err: e.message }, 'rpc connection error'));
    socket.on('close', () => {
      this.#closed = true;
      this.#queue.length = 0;
    });
  }

  destroy(): void {
    this.#closed = true;
    this.#socket.destroy();
  }

  #onData(chunk: Buffer): void {
    if (this.#closed || this.#broken) return;
    try {
      this.#queue.push(...this.#splitter.push(chunk));
    } catch (e) {
      // Serve what came before the bad bytes, then the parse error; read nothing more.
      const err = e as JsonSplitError;
      this.#broken = true;
      this.#queue.push(...err.completed, parseError(err.message));
      this.#socket.pause();
    }
    if (this.#queue.length >= MAX_QUEUED) this.#socket.pause();
    void this.#pump();
  }

  async #pump(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        const item = this.#queue.shift()!;
        let msg: unknown;
        let fatal: RpcError | undefined = item instanceof RpcError ? item : undefined;
        if (typeof item === 'string') {
          try {
            msg = JSON.parse(item);
          } catch (e) {
            fatal = parseError((e as Error).message);
          }
        }
        if (fatal) {
          // A byte stream has no resync point after bad JSON: answer, then hang up (as SPDK).
          this.#logger.info({ detail: fatal.detail }, 'rpc parse error; closing connection');
          this.#write({ jsonrpc: '2.0', id: null, error: fatal.toErrorObject() });
          this.#closed = true;
          this.#queue.length = 0;
          this.#socket.end();
          return;
        }
        const res = await dispatchMessage(msg, this.#caller);
        if (res) this.#write(res);
        if (this.#queue.length < MAX_QUEUED / 2 && this.#socket.isPaused()) this.#socket.resume();
      }
    } finally {
      this.#busy = false;
    }
  }

  #write(res: unknown): void {
    if (!this.#socket.writable) return;
    let text: string;
    try {
      text = JSON.stringify(res);
    } catch (e) {
      text = JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32603, message: `Internal error: ${(e as Error).message}` } });
    }
    this.#socket.write(text + '\n');
  }
}

export interface RpcServerConfig {
  socketPath: string;
  methods: MethodTable;
  logger?: Logger;
  maxRequestBytes?: number;
}

export class RpcServer {
  readonly socketPath: string;
  readonly methods: MethodTable;
  readonly #logger: Logger;
  readonly #maxRequestBytes: number;
  readonly #conns = new Set<RpcConnection>();
  #server: net.Server | undefined;

  constructor(cfg: RpcServerConfig) {
    this.socketPath = cfg.socketPath;
    this.methods = cfg.methods;
    this.#logger = cfg.logger ?? componentLogger('rpc');
    this.#maxRequestBytes = cfg.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
  }

  get connections(): number {
    return this.#conns.size;
  }

  /** Runs a method in-process, through the same validation as a socket request. */
  call(method: string, params?: unknown): Promise<unknown> {
    return this.methods.call(method, params);
  }

  async start(): Promise<void> {
    if (this.#server) throw new RpcServerError('RPC_ALREADY_STARTED', `RPC server on ${this.socketPath} already started`);
    await this.#clearStaleSocket();
    const server = net.createServer((socket) => {
      const conn = new RpcConnection(socket, this.methods, this.#logger, this.#maxRequestBytes);
      this.#conns.add(conn);
      socket.on('close', () => this.#conns.delete(conn));
    });
    await new Promise<void>((resolve, reject) => {
      const onError = (e: NodeJS.ErrnoException): void => {
        reject(new RpcServerError('RPC_LISTEN_FAILED', `cannot listen on ${this.socketPath}: ${e.code ?? e.message}`));
      };
      server.once('error', onError);
      // Bound and listening under a staging name first, then linked to the real one: the file
      // appears only once it accepts (a client polling for it never meets ECONNREFUSED).
      const staged = stagingSocketPath(this.socketPath);
      if (staged !== null) rmSync(staged, { force: true });
      server.listen(staged ?? this.socketPath, () => {
        server.off('error', onError);
        if (staged === null) return resolve();
        try {
          publishListeningSocket(staged, this.socketPath);
          resolve();
        } catch (e) {
          server.close();
          reject(new RpcServerError('RPC_LISTEN_FAILED', `cannot listen on ${this.socketPath}: ${(e as { code?: string }).code ?? (e as Error).message}`));
        }
      });
    });
    server.on('error', (e) => this.#logger.error({ err: e.message }, 'rpc server error'));
    this.#server = server;
    this.#logger.info({ socket: this.socketPath }, 'rpc server listening');
  }

  /** Stops listening, drops every client, removes the socket file. */
  async close(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    for (const c of this.#conns) c.destroy();
    this.#conns.clear();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    try {
      unlinkSync(this.socketPath);
    } catch {
      // already gone
    }
  }

  /** A socket file left by a crashed daemon is removed; a live one is an error. */
  async #clearStaleSocket(): Promise<void> {
    let isSocket: boolean;
    try {
      isSocket = lstatSync(this.socketPath).isSocket();
    } catch {
      return;
    }
    if (!isSocket) throw new RpcServerError('RPC_SOCKET_PATH_EXISTS', `${this.socketPath} exists and is not a socket`);
    const alive = await new Promise<boolean>((resolve) => {
      const s = net.connect(this.socketPath);
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (alive) throw new RpcServerError('RPC_SOCKET_IN_USE', `${this.socketPath} is in use by another process (is vhostd already running?)`);
    unlinkSync(this.socketPath);
  }
}

export interface CreateRpcServerOptions {
  socketPath?: string;
  bdevs: BdevRegistry;
  vhost?: VhostApi;
  lvols?: LvolModule;
  initDone?: Promise<void>;
  reactors?: ReactorGcApi;
  logger?: Logger;
  maxRequestBytes?: number;
  mallocHugepages?: MallocHugepages;
}

/** The daemon's RPC server: every vhostd method over these registries. */
export function createRpcServer(opts: CreateRpcServerOptions): RpcServer {
  // A given logger is used as it is: a child of it setting component again would write the key twice.
  const logger = opts.logger ?? componentLogger('rpc');
  const methods = createMethodTable({
    bdevs: opts.bdevs, vhost: opts.vhost, lvols: opts.lvols, initDone: opts.initDone, reactors: opts.reactors, logger,
    mallocHugepages: opts.mallocHugepages,
  });
  return new RpcServer({ socketPath: opts.socketPath ?? DEFAULT_RPC_SOCKET, methods, logger, maxRequestBytes: opts.maxRequestBytes });
}
