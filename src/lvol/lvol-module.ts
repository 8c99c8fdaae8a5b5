// The lvol bdev module: the set of loaded lvol stores, examine (a bdev that appears is probed for
// an lvol store, whose lvols are then registered: how a restarted daemon gets its volumes back),
// and lookups by the names SPDK's RPCs accept.
import type { Bdev } from '../bdev/bdev.ts';
import type { BdevRegistry } from '../bdev/bdev-registry.ts';
import { LVOL_MODULE } from '../bdev/modules/lvol-shared.ts';
import { componentLogger } from '../log/logger.ts';
import { LvolBdev } from './lvol-bdev.ts';
import { LvolError } from './lvol-error.ts';
import { checkLvolName, LvolStore, type LvolStoreCreateOptions, type ProgressFn } from './lvol-store.ts';

const log = componentLogger('lvol');

export class LvolModule {
  readonly bdevs: BdevRegistry;
  readonly #stores: LvolStore[] = [];
  readonly #examining = new Map<Bdev, Promise<void>>();

  constructor(bdevs: BdevRegistry) {
    this.bdevs = bdevs;
    bdevs.on('added', (b) => this.#examine(b));
  }

  #examine(bdev: Bdev): void {
    if (bdev.moduleName === LVOL_MODULE || bdev.claimedBy !== null) return;
    const p = LvolStore.load(this.bdevs, bdev)
      .then((store) => {
        if (!store) return;
        if (this.#stores.some((s) => s.name === store.name || s.uuid === store.uuid)) {
          log.error({ lvs: store.name, uuid: store.uuid, base: bdev.name }, 'lvol store with the same name or uuid already loaded: this one is left unloaded');
          return store.unload();
        }
        this.#stores.push(store);
      })
      .catch((e: unknown) => log.error({ bdev: bdev.name, err: e }, 'examine for an lvol store failed'))
      .finally(() => this.#examining.delete(bdev));
    this.#examining.set(bdev, p);
  }

  /** Resolves once every examine started so far has finished (bdev_wait_for_examine). */
  async waitForExamine(): Promise<void> {
    while (this.#examining.size > 0) await Promise.all([...this.#examining.values()]);
  }

  stores(): LvolStore[] {
    return [...this.#stores];
  }

  /** By uuid or name (SPDK's `uuid` / `lvs_name` pair: exactly one must be given). */
  store(sel: { uuid?: string; lvs_name?: string }): LvolStore {
    if ((sel.uuid === undefined) === (sel.lvs_name === undefined)) {
      throw new LvolError('LVOL_INVALID_PARAM', 'give exactly one of uuid or lvs_name');
    }
    const s = sel.uuid !== undefined
      ? this.#stores.find((x) => x.uuid === sel.uuid?.toLowerCase())
      : this.#stores.find((x) => x.name === sel.lvs_name);
    if (!s) throw new LvolError('LVOL_STORE_NOT_FOUND', `no lvol store ${sel.uuid !== undefined ? `with uuid '${sel.uuid}'` : `named '${sel.lvs_name}'`}`);
    return s;
  }

  /** An lvol by bdev name, UUID or "lvs/lvol" alias. */
  lvol(name: string): LvolBdev {
    const b = this.bdevs.get(name);
    if (!(b instanceof LvolBdev)) throw new LvolError('LVOL_NOT_FOUND', `no lvol '${name}'`);
    return b;
  }

  async createStore(baseName: string, opts: LvolStoreCreateOptions, progress?: ProgressFn): Promise<LvolStore> {
    checkLvolName('lvs_name', opts.name);
    const base = this.bdevs.require(baseName);
    await this.#examining.get(base);
    if (this.#stores.some((s) => s.name === opts.name)) throw new LvolError('LVOL_STORE_EXISTS', `lvol store '${opts.name}' already exists`);
    if (base.claimedBy !== null) throw new LvolError('LVOL_IN_USE', `bdev '${base.name}' is claimed by '${base.claimedBy}'`);
    const store = await LvolStore.create(this.bdevs, base, opts, progress);
    this.#stores.push(store);
    return store;
  }

  async renameStore(oldName: string, newName: string): Promise<void> {
    const s = this.store({ lvs_name: oldName });
    if (newName !== oldName && this.#stores.some((x) => x.name === newName)) throw new LvolError('LVOL_STORE_EXISTS', `lvol store '${newName}' already exists`);
    await s.renameStore(newName);
  }

  async deleteStore(store: LvolStore): Promise<void> {
    await store.destroy();
    this.#stores.splice(this.#stores.indexOf(store), 1);
  }

  /** Unloads every store cleanly (daemon shutdown); stores with lvols in use are left dirty. */
  async unloadAll(): Promise<void> {
    for (const s of [...this.#stores]) {
      try {
        await s.unload();
        this.#stores.splice(this.#stores.indexOf(s), 1);
      } catch (e) {
        log.warn({ lvs: s.name, err: e }, 'lvol store not unloaded cleanly (it will be recovered at the next load)');
      }
    }
  }
}
