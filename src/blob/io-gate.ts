// Per-blob gate between data I/O and metadata operations that move clusters (snapshot, inflate,
// merge, shrink): freeze() waits for in-flight I/O to drain and holds new I/O until thaw().
// Control plane only (it allocates promises).

export class IoGate {
  #inflight = 0;
  #freezes = 0;
  #thawWaiters: Array<() => void> = [];
  #drainWaiters: Array<() => void> = [];

  get inflight(): number {
    return this.#inflight;
  }

  get frozen(): boolean {
    return this.#freezes > 0;
  }

  async enter(): Promise<void> {
    while (this.#freezes > 0) await new Promise<void>((r) => this.#thawWaiters.push(r));
    this.#inflight++;
  }

  leave(): void {
    this.#inflight--;
    if (this.#inflight === 0) for (const r of this.#drainWaiters.splice(0)) r();
  }

  /** Resolves once no I/O is in flight; I/O started afterwards waits for thaw(). Nests. */
  async freeze(): Promise<void> {
    this.#freezes++;
    if (this.#inflight > 0) await new Promise<void>((r) => this.#drainWaiters.push(r));
  }

  thaw(): void {
    if (this.#freezes === 0) return;
    this.#freezes--;
    if (this.#freezes === 0) for (const r of this.#thawWaiters.splice(0)) r();
  }
}
