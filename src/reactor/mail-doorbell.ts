// The mailbox's doorbell: a counter in shared memory that the control plane bumps after each
// message it posts to a reactor. The reactor reads it once per loop turn and calls
// receiveMessageOnPort only when it moved: on an empty port that call (into C++, under the port's
// lock) took about a third of an idle turn, which at queue depth 1 is latency for every I/O.
export class MailDoorbell {
  readonly buffer: SharedArrayBuffer;
  private readonly word: Int32Array;
  /** The counter starts at 0: rings made before the reader side was built still count. */
  private seen = 0;

  /** Pass the other side's buffer to share its counter. */
  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(4)) {
    this.buffer = buffer;
    this.word = new Int32Array(buffer, 0, 1);
  }

  /** After posting: the message is queued on the port before the counter moves (seq-cst store). */
  ring(): void {
    Atomics.add(this.word, 0, 1);
  }

  /** True once per change of the counter: drain the port then (it may hold several messages). */
  rung(): boolean {
    const v = Atomics.load(this.word, 0);
    if (v === this.seen) return false;
    this.seen = v;
    return true;
  }
}
