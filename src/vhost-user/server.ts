// The listening socket of one device. One front-end at a time: while a connection lives the listen
// fd is not watched, so a reconnecting QEMU waits in the backlog until the previous session is torn
// down.
import { EventEmitter } from 'node:events';
import { lstatSync, unlinkSync } from 'node:fs';
import { componentLogger, type Logger } from '../log/logger.ts';
import { closeFd } from '../sys/fd.ts';
import { watchReadable, type FdWatch } from '../sys/fd-watch.ts';
import { acceptUnix, connectUnix, listenUnix } from '../sys/unix-socket.ts';
import { VhostUserConnection } from './connection.ts';
import type { VhostUserDevice } from './device.ts';

export type VhostUserServerErrorCode = 'SOCKET_PATH_IN_USE' | 'NOT_A_SOCKET' | 'ALREADY_LISTENING' | 'SERVER_CLOSED';

export class VhostUserServerError extends Error {
  readonly code: VhostUserServerErrorCode;
  constructor(code: VhostUserServerErrorCode, message: string) {
    super(message);
    this.name = 'VhostUserServerError';
    this.code = code;
  }
}

export interface VhostUserServerEvents {
  /** A front-end connected (the device's connected() has been called). */
  connect: [];
  /** The front-end's session ended and was torn down. */
  disconnect: [reason: string];
}

export class VhostUserServer extends EventEmitter<VhostUserServerEvents> {
  readonly socketPath: string;
  private readonly device: VhostUserDevice;
  private readonly log: Logger;
  private listenFd = -1;
  private listenWatch: FdWatch | null = null;
  private conn: VhostUserConnection | null = null;
  private closing: Promise<void> | null = null;

  constructor(socketPath: string, device: VhostUserDevice, logger?: Logger) {
    super();
    this.socketPath = socketPath;
    this.device = device;
    this.log = logger ?? componentLogger('vhost-user', { socket: socketPath });
  }

  /** A front-end is connected now. */
  get connected(): boolean {
    return this.conn !== null;
  }

  /** The live connection, if any (features, running rings, back-end requests). */
  get connection(): VhostUserConnection | null {
    return this.conn;
  }

  /**
   * Creates the socket. A leftover socket file nobody listens on is removed first; any other file
   * at the path, or a socket something still listens on, is an error.
   */
  listen(): void {
    if (this.closing !== null) throw new VhostUserServerError('SERVER_CLOSED', `${this.socketPath}: server was closed`);
    if (this.listenFd >= 0) throw new VhostUserServerError('ALREADY_LISTENING', `${this.socketPath}: already listening`);
    this.removeStaleSocket();
    this.listenFd = listenUnix(this.socketPath);
    this.log.info('listening');
    this.watchListen();
  }

  /** Disconnects the front-end, stops listening and removes the socket file. */
  close(): Promise<void> {
    if (this.closing === null) this.closing = this.shutdown();
    return this.closing;
  }

  private removeStaleSocket(): void {
    let isSocket: boolean;
    try {
      isSocket = lstatSync(this.socketPath).isSocket();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    if (!isSocket) throw new VhostUserServerError('NOT_A_SOCKET', `${this.socketPath} exists and is not a socket; not removing it`);
    let probe = -1;
    try {
      probe = connectUnix(this.socketPath, false);
    } catch {
      // Nobody listens: a socket file left behind by a previous run.
      unlinkSync(this.socketPath);
      this.log.info('removed stale socket file');
      return;
    }
    closeFd(probe);
    throw new VhostUserServerError('SOCKET_PATH_IN_USE', `${this.socketPath}: another process is listening on this socket`);
  }

  private watchListen(): void {
    if (this.listenWatch === null && this.listenFd >= 0) this.listenWatch = watchReadable(this.listenFd, () => this.accept());
  }

  private unwatchListen(): void {
    this.listenWatch?.stop();
    this.listenWatch = null;
  }

  private accept(): void {
    if (this.conn !== null || this.closing !== null) return;
    let fd: number;
    try {
      fd = acceptUnix(this.listenFd);
    } catch (e) {
      this.log.error({ err: e }, 'accept failed');
      return;
    }
    if (fd < 0) return;
    this.unwatchListen();
    const conn = new VhostUserConnection(fd, this.device, this.log.child({ conn: fd }), (reason) => this.connectionClosed(conn, reason));
    this.conn = conn;
    this.log.info('front-end connected');
    try {
      conn.start();
    } catch (e) {
      this.log.error({ err: e }, 'could not start the connection');
      void conn.close(`start failed: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    this.emit('connect');
  }

  private connectionClosed(conn: VhostUserConnection, reason: string): void {
    if (this.conn !== conn) return;
    this.conn = null;
    this.emit('disconnect', reason);
    if (this.closing === null) this.watchListen();
  }

  private async shutdown(): Promise<void> {
    this.unwatchListen();
    if (this.conn !== null) await this.conn.close('server closed');
    if (this.listenFd >= 0) {
      closeFd(this.listenFd);
      this.listenFd = -1;
      try {
        unlinkSync(this.socketPath);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn({ err: e }, 'could not remove the socket file');
      }
    }
    this.log.info('closed');
  }
}
