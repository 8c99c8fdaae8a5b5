// Framing of vhost-user messages over a non-blocking Unix socket watched by the event loop: never
// blocks, so the back-end may run in the same process. Reads the 12-byte header and the payload
// with separate recvmsg calls, so the fds sent with a message (attached to its first byte) are
// attributed to that message and never to the next one.
import { recvWithFds, sendWithFds } from '../sys/unix-socket.ts';
import { watchReadable, type FdWatch } from '../sys/fd-watch.ts';
import { closeFd } from '../sys/fd.ts';
import { VHOST_USER_HEADER_SIZE, VHOST_USER_MAX_PAYLOAD, requestName } from './vhost-user-protocol.ts';

export interface VhostUserMessage {
  request: number;
  flags: number;
  /** The header's size field (equals payload.length for received messages). */
  size: number;
  payload: Uint8Array;
  /** Fds that came with the message; owned by whoever takes the message. */
  fds: number[];
}

export type ChannelErrorCode = 'DISCONNECTED' | 'FRAMING' | 'FDS_TRUNCATED' | 'SEND_FAILED';

export class ChannelError extends Error {
  readonly code: ChannelErrorCode;
  constructor(code: ChannelErrorCode, message: string) {
    super(message);
    this.name = 'ChannelError';
    this.code = code;
  }
}

export interface ChannelHandlers {
  onMessage(msg: VhostUserMessage): void;
  /** Called once: null on an orderly close by us, an error when the peer left or broke framing. */
  onClose(reason: ChannelError | null): void;
}

/** Encodes header + payload into one buffer (sizeField lets fuzz tests lie about the size). */
export function encodeMessage(request: number, flags: number, payload: Uint8Array, sizeField = payload.length): Uint8Array {
  const out = new Uint8Array(VHOST_USER_HEADER_SIZE + payload.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, request >>> 0, true);
  dv.setUint32(4, flags >>> 0, true);
  dv.setUint32(8, sizeField >>> 0, true);
  out.set(payload, VHOST_USER_HEADER_SIZE);
  return out;
}

export class VhostUserChannel {
  readonly fd: number;
  private readonly handlers: ChannelHandlers;
  private readonly watch: FdWatch;
  private readonly header = new Uint8Array(VHOST_USER_HEADER_SIZE);
  private readonly headerView = new DataView(this.header.buffer);
  private headerGot = 0;
  private payload: Uint8Array | null = null;
  private payloadGot = 0;
  private fds: number[] = [];
  private closed = false;

  /** Takes ownership of fd (a connected, non-blocking stream socket). */
  constructor(fd: number, handlers: ChannelHandlers) {
    this.fd = fd;
    this.handlers = handlers;
    // An exception escaping a koffi poll callback crashes the process: contain it here.
    this.watch = watchReadable(fd, () => {
      try {
        this.readAvailable();
      } catch (e) {
        this.finish(new ChannelError('FRAMING', `receive failed: ${(e as Error).message}`));
      }
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  send(request: number, flags: number, payload: Uint8Array, fds: readonly number[] = [], sizeField = payload.length): void {
    this.sendBytes(encodeMessage(request, flags, payload, sizeField), fds);
  }

  /** Sends arbitrary bytes (possibly a partial or malformed message) with fds on the first byte. */
  sendBytes(bytes: Uint8Array, fds: readonly number[] = []): void {
    if (this.closed) throw new ChannelError('DISCONNECTED', 'send on a closed vhost-user connection');
    try {
      sendWithFds(this.fd, bytes, fds);
    } catch (e) {
      throw new ChannelError('SEND_FAILED', `sendmsg of ${bytes.length} bytes failed: ${(e as Error).message}`);
    }
  }

  /** Closes the socket; pending fds of a half-read message are closed. */
  close(): void {
    this.finish(null);
  }

  private finish(reason: ChannelError | null): void {
    if (this.closed) return;
    this.closed = true;
    this.watch.stop();
    for (const f of this.fds) closeFd(f);
    this.fds = [];
    closeFd(this.fd);
    this.handlers.onClose(reason);
  }

  private readAvailable(): void {
    while (!this.closed) {
      let got: number;
      if (this.payload === null) {
        const r = recvWithFds(this.fd, this.header, this.headerGot, VHOST_USER_HEADER_SIZE - this.headerGot);
        if (r === null) return;
        if (!this.takeFds(r.fds, r.fdsTruncated)) return;
        if (r.bytes === 0) return this.peerClosed();
        got = r.bytes;
        this.headerGot += got;
        if (this.headerGot < VHOST_USER_HEADER_SIZE) continue;
        const size = this.headerView.getUint32(8, true);
        if (size > VHOST_USER_MAX_PAYLOAD) {
          const req = this.headerView.getUint32(0, true);
          return this.finish(new ChannelError('FRAMING', `peer sent ${requestName(req)} with payload size ${size} (max ${VHOST_USER_MAX_PAYLOAD})`));
        }
        this.payload = new Uint8Array(size);
        this.payloadGot = 0;
      } else if (this.payloadGot < this.payload.length) {
        const r = recvWithFds(this.fd, this.payload, this.payloadGot, this.payload.length - this.payloadGot);
        if (r === null) return;
        if (!this.takeFds(r.fds, r.fdsTruncated)) return;
        if (r.bytes === 0) return this.peerClosed();
        this.payloadGot += r.bytes;
      }
      if (this.payload !== null && this.payloadGot === this.payload.length) this.deliver();
    }
  }

  private deliver(): void {
    const msg: VhostUserMessage = {
      request: this.headerView.getUint32(0, true),
      flags: this.headerView.getUint32(4, true),
      size: this.headerView.getUint32(8, true),
      payload: this.payload ?? new Uint8Array(0),
      fds: this.fds,
    };
    this.fds = [];
    this.payload = null;
    this.headerGot = 0;
    this.payloadGot = 0;
    this.handlers.onMessage(msg);
  }

  private takeFds(fds: number[], truncated: boolean): boolean {
    for (const f of fds) this.fds.push(f);
    if (truncated) {
      this.finish(new ChannelError('FDS_TRUNCATED', 'peer sent more fds than the control buffer holds'));
      return false;
    }
    return true;
  }

  private peerClosed(): void {
    const partial = this.headerGot > 0 || this.payload !== null;
    this.finish(new ChannelError('DISCONNECTED', partial ? 'peer closed the connection in the middle of a message' : 'peer closed the connection'));
  }
}
