// A fixed set of fds waited on with poll(2) from a synchronous loop (the load generator's
// interrupt mode): the pollfd array is made once, so a wait allocates nothing.
import { c } from './libc.ts';

const POLLIN = 1;

export class PollSet {
  readonly #pfd: Int32Array;
  readonly #n: number;

  constructor(fds: readonly number[]) {
    this.#n = fds.length;
    this.#pfd = new Int32Array(fds.length * 2);
    for (let i = 0; i < fds.length; i++) {
      this.#pfd[i * 2] = fds[i];
      this.#pfd[i * 2 + 1] = POLLIN;
    }
  }

  /** Blocks until one fd is readable or timeoutMs passes; returns how many are readable (0 on timeout or EINTR). */
  wait(timeoutMs: number): number {
    for (let i = 0; i < this.#n; i++) this.#pfd[i * 2 + 1] = POLLIN;
    const r = c.poll(this.#pfd, this.#n, timeoutMs);
    return r > 0 ? r : 0;
  }
}
