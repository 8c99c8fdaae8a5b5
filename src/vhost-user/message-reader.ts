// Frames vhost-user messages out of a non-blocking stream socket: header first, then exactly the
// payload it announces. Reading exactly one message's bytes keeps the kernel from handing over
// the next message's fds early; fds arriving with any part belong to the message being read.
import { recvWithFds } from '../sys/unix-socket.ts';
import { closeFd } from '../sys/fd.ts';
import { VHOST_USER_HDR_SIZE, VHOST_USER_MAX_PAYLOAD_SIZE } from './message-types.ts';
import { decodeHeader, type MessageHeader, type VhostUserMessage } from './message.ts';
import { VhostUserProtocolError } from './protocol-error.ts';

/** read() result when the peer closed the connection. */
export const END_OF_STREAM = 'eof';

export class MessageReader {
  private readonly buf = new Uint8Array(VHOST_USER_HDR_SIZE + VHOST_USER_MAX_PAYLOAD_SIZE);
  private have = 0;
  private header: MessageHeader | null = null;
  private fds: number[] = [];

  /**
   * Reads from fd until one message is complete. Returns the message (its payload is a view into
   * this reader, valid until the next read), null when the socket has no more data for now, or
   * END_OF_STREAM. Throws VhostUserProtocolError for framing errors (after closing any fds
   * received for the broken message).
   */
  read(fd: number): VhostUserMessage | null | typeof END_OF_STREAM {
    for (;;) {
      const want = this.header === null ? VHOST_USER_HDR_SIZE : VHOST_USER_HDR_SIZE + this.header.size;
      if (this.header !== null && this.have === want) return this.complete(this.header);
      const r = recvWithFds(fd, this.buf, this.have, want - this.have);
      if (r === null) return null;
      for (const f of r.fds) this.fds.push(f);
      if (r.fdsTruncated) {
        this.discard();
        throw new VhostUserProtocolError('FDS_TRUNCATED', 'the kernel dropped file descriptors of a message (too many sent at once)');
      }
      if (r.bytes === 0) return END_OF_STREAM;
      this.have += r.bytes;
      if (this.header === null && this.have === VHOST_USER_HDR_SIZE) {
        try {
          this.header = decodeHeader(this.buf.subarray(0, VHOST_USER_HDR_SIZE));
        } catch (e) {
          this.discard();
          throw e;
        }
      }
    }
  }

  /** True when part of a message has been read (a disconnect now cuts a message short). */
  get partial(): boolean {
    return this.have > 0 || this.fds.length > 0;
  }

  /** Drops a partly read message and closes the fds that came with it. */
  discard(): void {
    for (const f of this.fds) closeFd(f);
    this.fds = [];
    this.have = 0;
    this.header = null;
  }

  private complete(h: MessageHeader): VhostUserMessage {
    const msg: VhostUserMessage = {
      request: h.request,
      flags: h.flags,
      size: h.size,
      payload: this.buf.subarray(VHOST_USER_HDR_SIZE, VHOST_USER_HDR_SIZE + h.size),
      fds: this.fds,
    };
    this.fds = [];
    this.have = 0;
    this.header = null;
    return msg;
  }
}
