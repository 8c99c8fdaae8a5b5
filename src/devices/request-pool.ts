// The preallocated requests of one queue: a free request receives the next available chain, and
// goes back to the pool on completion. Nothing is allocated per request.
import type { Virtqueue } from '../virtio/virtqueue.ts';
import type { DescriptorChain } from '../virtio/descriptor-chain.ts';

export class RequestPool<R extends { readonly chain: DescriptorChain }> {
  private readonly make: () => R;
  private readonly free: R[] = [];
  private size = 0;
  /** Requests taken and not given back yet (in flight). */
  active = 0;

  constructor(make: () => R) {
    this.make = make;
  }

  /** One request per descriptor at most: grows to the queue size, once. */
  grow(n: number): void {
    while (this.size < n) {
      this.free.push(this.make());
      this.size++;
    }
  }

  /** The next available chain in a free request; null when none is free or the ring has nothing (or broke). */
  take(vq: Virtqueue): R | null {
    const free = this.free;
    if (free.length === 0) return null;
    const req = free[free.length - 1];
    if (!vq.pop(req.chain)) return null;
    free.pop();
    this.active++;
    return req;
  }

  give(req: R): void {
    req.chain.out.reset();
    req.chain.in.reset();
    this.active--;
    this.free.push(req);
  }
}
