// Runs metadata operations one at a time, in submission order: the blobstore's only
// serialisation. A function run here must not itself call run() (it would wait on itself).

export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#tail.then(fn);
    this.#tail = p.catch(() => undefined);
    return p;
  }
}
