// The back-end -> front-end socket QEMU hands over with SET_BACKEND_REQ_FD (CONFIG_CHANGE_MSG).
import { closeFd, setNonBlocking } from '../sys/fd.ts';
import { sendWithFds } from '../sys/unix-socket.ts';
import { VHOST_USER_VERSION } from './message-types.ts';
import { encodeMessage } from './message.ts';

export class BackendChannel {
  private fd: number;

  /** Takes ownership of fd. */
  constructor(fd: number) {
    this.fd = fd;
    // Only this process uses this end (QEMU keeps the other one), so O_NONBLOCK is ours to set:
    // a front-end that stops reading must not block the main thread.
    setNonBlocking(fd);
  }

  get open(): boolean {
    return this.fd >= 0;
  }

  /** Sends one request (no NEED_REPLY: nothing is read back). Throws SysError if the socket fails. */
  send(request: number, payload: Uint8Array, fds: readonly number[] = []): void {
    if (this.fd < 0) throw new Error('back-end channel is closed');
    sendWithFds(this.fd, encodeMessage(request, VHOST_USER_VERSION, payload), fds);
  }

  close(): void {
    closeFd(this.fd);
    this.fd = -1;
  }
}
