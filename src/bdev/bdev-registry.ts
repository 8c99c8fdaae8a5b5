// The set of registered bdevs (main thread). Names, aliases and UUIDs share one namespace, as in
// SPDK v23.05 where a bdev's UUID is also registered as an alias of it.
import { EventEmitter } from 'node:events';
import type { Bdev } from './bdev.ts';
import { BdevError } from './bdev-error.ts';
import { checkBdevName, isUuid } from './bdev-geometry.ts';

export interface BdevRegistryEvents {
  added: [bdev: Bdev];
  removed: [bdev: Bdev];
  /** The bdev's numBlocks changed. */
  resized: [bdev: Bdev];
}

export class BdevRegistry extends EventEmitter<BdevRegistryEvents> {
  /** Registration order, which is also the order of bdev_get_bdevs and save_config. */
  readonly #bdevs: Bdev[] = [];
  /** name, every alias and the UUID -> bdev. */
  readonly #names = new Map<string, Bdev>();

  /** Every name the bdev is known by besides its own: its aliases, then its UUID (unless that is its name). */
  aliasesOf(bdev: Bdev): string[] {
    const out = [...bdev.aliases];
    if (bdev.uuid !== bdev.name && !out.includes(bdev.uuid)) out.push(bdev.uuid);
    return out;
  }

  /** Tells the bdev's users (controllers) that its size changed. */
  notifyResized(bdev: Bdev): void {
    this.emit('resized', bdev);
  }

  register(bdev: Bdev): void {
    checkBdevName(bdev.name);
    const keys = [bdev.name, ...this.aliasesOf(bdev)];
    for (const k of keys) checkBdevName(k);
    if (new Set(keys).size !== keys.length) {
      throw new BdevError('BDEV_INVALID_PARAM', `bdev '${bdev.name}' lists the same name twice among its name, aliases and uuid`);
    }
    for (const k of keys) {
      const other = this.#names.get(k);
      if (other) {
        const what = k === bdev.name ? 'name' : k === bdev.uuid ? 'uuid' : 'alias';
        throw new BdevError('BDEV_EXISTS', `bdev ${what} '${k}' already exists (used by bdev '${other.name}')`);
      }
    }
    for (const k of keys) this.#names.set(k, bdev);
    this.#bdevs.push(bdev);
    this.emit('added', bdev);
  }

  /** Throws BDEV_EXISTS when `name` is already a name, alias or UUID of a bdev. */
  checkAliasFree(name: string): void {
    checkBdevName(name);
    const other = this.get(name);
    if (other) throw new BdevError('BDEV_EXISTS', `bdev name or alias '${name}' already exists (used by bdev '${other.name}')`);
  }

  /** Renames one alias of a registered bdev (lvol rename). */
  replaceAlias(bdev: Bdev, oldAlias: string, newAlias: string): void {
    const i = bdev.aliases.indexOf(oldAlias);
    if (i < 0 || this.#names.get(oldAlias) !== bdev) {
      throw new BdevError('BDEV_NOT_FOUND', `bdev '${bdev.name}' has no alias '${oldAlias}'`);
    }
    if (oldAlias === newAlias) return;
    this.checkAliasFree(newAlias);
    this.#names.delete(oldAlias);
    this.#names.set(newAlias, bdev);
    bdev.aliases[i] = newAlias;
  }

  /** Looks a bdev up by name, alias or UUID (UUIDs match in any letter case). */
  get(nameOrAlias: string): Bdev | undefined {
    const b = this.#names.get(nameOrAlias);
    if (b || !isUuid(nameOrAlias)) return b;
    return this.#names.get(nameOrAlias.toLowerCase());
  }

  /** As get(), but a missing bdev is a BDEV_NOT_FOUND error. */
  require(nameOrAlias: string): Bdev {
    const b = this.get(nameOrAlias);
    if (!b) throw new BdevError('BDEV_NOT_FOUND', `bdev '${nameOrAlias}' does not exist`);
    return b;
  }

  list(): Bdev[] {
    return [...this.#bdevs];
  }

  get size(): number {
    return this.#bdevs.length;
  }

  /**
   * Removes a bdev and destroys it. `module`, when given, must be the bdev's module (SPDK's
   * bdev_malloc_delete refuses a null bdev). A claimed bdev cannot be removed: its claimer
   * (a controller) still runs I/O on it.
   */
  unregister(nameOrAlias: string, module?: string): Bdev {
    const bdev = this.require(nameOrAlias);
    if (module !== undefined && bdev.moduleName !== module) {
      throw new BdevError('BDEV_WRONG_MODULE', `bdev '${bdev.name}' belongs to module '${bdev.moduleName}', not '${module}'`);
    }
    if (bdev.claimedBy !== null) {
      throw new BdevError('BDEV_CLAIMED', `bdev '${bdev.name}' is claimed by '${bdev.claimedBy}'`);
    }
    this.#bdevs.splice(this.#bdevs.indexOf(bdev), 1);
    for (const k of [bdev.name, ...this.aliasesOf(bdev)]) this.#names.delete(k);
    this.emit('removed', bdev);
    bdev.destroy();
    return bdev;
  }

  /** Claims a bdev exclusively for `claimer` (a controller or module name). */
  claim(nameOrAlias: string, claimer: string): Bdev {
    if (typeof claimer !== 'string' || claimer.length === 0) {
      throw new BdevError('BDEV_INVALID_PARAM', 'claimer name must not be empty');
    }
    const bdev = this.require(nameOrAlias);
    if (bdev.claimedBy !== null) {
      throw new BdevError('BDEV_CLAIMED', `bdev '${bdev.name}' is already claimed by '${bdev.claimedBy}'`);
    }
    bdev.claimedBy = claimer;
    return bdev;
  }

  /** Releases a claim. With `claimer` given, only that holder may release it. */
  release(nameOrAlias: string, claimer?: string): Bdev {
    const bdev = this.require(nameOrAlias);
    if (bdev.claimedBy === null) {
      throw new BdevError('BDEV_NOT_CLAIMED', `bdev '${bdev.name}' is not claimed`);
    }
    if (claimer !== undefined && bdev.claimedBy !== claimer) {
      throw new BdevError('BDEV_CLAIMED', `bdev '${bdev.name}' is claimed by '${bdev.claimedBy}', not by '${claimer}'`);
    }
    bdev.claimedBy = null;
    return bdev;
  }

  /** Resolves with the bdev once it exists, or undefined after timeoutMs (bdev_get_bdevs' timeout). */
  waitFor(nameOrAlias: string, timeoutMs: number): Promise<Bdev | undefined> {
    const now = this.get(nameOrAlias);
    if (now || timeoutMs <= 0) return Promise.resolve(now);
    return new Promise((resolve) => {
      const onAdded = (): void => {
        const b = this.get(nameOrAlias);
        if (!b) return;
        clearTimeout(timer);
        this.off('added', onAdded);
        resolve(b);
      };
      // setTimeout fires at once for delays past 2^31-1 ms; clamp (about 24 days).
      const timer = setTimeout(() => {
        this.off('added', onAdded);
        resolve(undefined);
      }, Math.min(timeoutMs, 0x7fffffff));
      this.on('added', onAdded);
    });
  }
}
