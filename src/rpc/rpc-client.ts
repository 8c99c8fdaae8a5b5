// JSON-RPC client over a Unix socket (vhostctl, tests). Requests go one at a time and are
// matched to responses by id; responses are split with the same streaming splitter as the server.
import net from 'node:net';
import { JsonStreamSplitter } from './json-stream-splitter.ts';
import { RpcError, type JsonRpcErrorObject } from './rpc-error.ts';

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** A failure on this side (connect, timeout, lost connection): JSON-RPC code 0, never sent by a server. */
export function clientError(code: string, message: string): RpcError {
  return new RpcError(code, 0, message);
}

export class RpcClient {
  readonly socketPath: string;
  readonly #socket: net.Socket;
  readonly #splitter = new JsonStreamSplitter();
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #closedError: RpcError | undefined;

  private constructor(socketPath: string, socket: net.Socket) {
    this.socketPath = socketPath;
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (e) => this.#fail(clientError('RPC_CONNECTION_LOST', `connection to ${socketPath} failed: ${e.message}`)));
    socket.on('close', () => this.#fail(clientError('RPC_CONNECTION_LOST', `connection to ${socketPath} closed`)));
  }

  static connect(socketPath: string, timeoutMs = 5000): Promise<RpcClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(socketPath);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(clientError('RPC_CONNECT_FAILED', `cannot connect to ${socketPath}: timed out`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new RpcClient(socketPath, socket));
      });
      socket.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(clientError('RPC_CONNECT_FAILED', `cannot connect to ${socketPath}: ${e.code ?? e.message} (is vhostd running?)`));
      });
    });
  }

  /** Sends a request; resolves with its result, rejects with the server's RpcError or RPC_TIMEOUT. */
  call(method: string, params?: unknown, timeoutMs = 60_000): Promise<unknown> {
    if (this.#closedError) return Promise.reject(this.#closedError);
    const id = this.#nextId++;
    const req: Record<string, unknown> = { jsonrpc: '2.0', method, id };
    if (params !== undefined) req.params = params;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(clientError('RPC_TIMEOUT', `no response to ${method} within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      this.#socket.write(JSON.stringify(req));
    });
  }

  close(): void {
    this.#socket.end();
    this.#socket.destroy();
  }

  #onData(chunk: Buffer): void {
    let texts: string[];
    try {
      texts = this.#splitter.push(chunk);
    } catch (e) {
      this.#fail(clientError('RPC_BAD_RESPONSE', `unparsable response: ${(e as Error).message}`));
      this.#socket.destroy();
      return;
    }
    for (const text of texts) {
      let msg: { id?: unknown; result?: unknown; error?: JsonRpcErrorObject };
      try {
        msg = JSON.parse(text);
      } catch (e) {
        this.#fail(clientError('RPC_BAD_RESPONSE', `unparsable response: ${(e as Error).message}`));
        this.#socket.destroy();
        return;
      }
      const p = typeof msg.id === 'number' ? this.#pending.get(msg.id) : undefined;
      if (!p) {
        // An error with id null answers a request the server could not read: fail them all.
        if (msg.id === null && msg.error) this.#fail(RpcError.fromErrorObject(msg.error));
        continue;
      }
      this.#pending.delete(msg.id as number);
      clearTimeout(p.timer);
      if (msg.error) p.reject(RpcError.fromErrorObject(msg.error));
      else p.resolve(msg.result);
    }
  }

  #fail(err: RpcError): void {
    this.#closedError ??= err;
    for (const [id, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(err);
      this.#pending.delete(id);
    }
  }
}
