// The SCSI targets of one virtio-scsi device inside a reactor, built from mailbox configs:
// each LUN gets its own bdev channel opened in this thread.
import { ScsiTarget } from '../../scsi/scsi-target.ts';
import { ScsiLun } from '../../scsi/scsi-lun.ts';
import type { ScsiTask } from '../../scsi/scsi-task.ts';
import type { ScsiTmfWaiter } from '../../scsi/task-management.ts';
import { openBdevChannel } from '../../bdev/channel-open.ts';
import type { ScsiLunConfig } from '../../reactor/mailbox-messages.ts';
import { VIRTIO_SCSI_MAX_TARGETS } from './virtio-scsi-constants.ts';
import { DeviceError } from '../device-error.ts';

export class ScsiTargetSet {
  private readonly name: string;
  private readonly targets: (ScsiTarget | null)[] = new Array<ScsiTarget | null>(VIRTIO_SCSI_MAX_TARGETS).fill(null);
  private active: ScsiTarget[] = [];
  /** Removed LUNs whose channels close once their last task finished. */
  private removed: ScsiLun[] = [];

  constructor(name: string) {
    this.name = name;
  }

  has(target: number): boolean {
    return this.targets[target] !== null;
  }

  get(target: number): ScsiTarget | null {
    return this.targets[target] ?? null;
  }

  setTarget(num: number, luns: ScsiLunConfig[] | null): void {
    const old = this.targets[num];
    if (old) {
      for (const id of old.lunIds()) {
        const lun = old.removeLun(id);
        lun.abortTaskSet(NO_WAITER);
        this.removed.push(lun);
      }
      this.targets[num] = null;
    }
    if (luns) {
      const t = new ScsiTarget(num, `${this.name}.t${num}`);
      const opened: ScsiLun[] = [];
      try {
        for (const cfg of luns) {
          // Without it each reactor would keep its own unit attentions and mode parameters.
          if (!(cfg.shared instanceof SharedArrayBuffer)) throw new DeviceError('BAD_LUN_CONFIG', `target ${num} LUN ${cfg.lunId}: no shared LUN state`);
          const lun = new ScsiLun(cfg.lunId, cfg.info, openBdevChannel(cfg.bdev), cfg.shared);
          opened.push(lun);
          t.addLun(lun);
        }
      } catch (e) {
        for (const lun of opened) lun.close();
        throw e;
      }
      this.targets[num] = t;
    }
    this.active = this.targets.filter((t): t is ScsiTarget => t !== null);
    this.releaseRemoved();
  }

  execute(target: number, lun: number, task: ScsiTask): void {
    this.targets[target]!.execute(lun, task);
  }

  /** A LUN's bdev changed size: the channel and the LUN (unit attention) learn it. False: no such target. */
  resize(target: number, numBlocks: number): boolean {
    const t = this.targets[target];
    if (!t) return false;
    for (const id of t.lunIds()) {
      const lun = t.getLun(id)!;
      lun.resized(numBlocks);
    }
    return true;
  }

  poll(): number {
    let n = 0;
    const a = this.active;
    for (let i = 0; i < a.length; i++) n += a[i].poll();
    for (let i = 0; i < this.removed.length; i++) n += this.removed[i].poll();
    return n;
  }

  /** The reactor sleeps with nothing in flight (true) or woke (false). */
  setAsleep(asleep: boolean): void {
    const a = this.active;
    for (let i = 0; i < a.length; i++) a[i].setAsleep(asleep);
    for (let i = 0; i < this.removed.length; i++) this.removed[i].setAsleep(asleep);
  }

  releaseRemoved(): void {
    if (this.removed.length === 0) return;
    this.removed = this.removed.filter((lun) => {
      if (lun.activeTasks > 0) return true;
      lun.close();
      return false;
    });
  }

  /** Device reset: every task is aborted (the guest forgot them); targets stay. */
  reset(): void {
    for (const t of this.active) for (const id of t.lunIds()) t.getLun(id)!.abortTaskSet(NO_WAITER);
  }

  close(): void {
    for (let i = 0; i < this.targets.length; i++) if (this.targets[i]) this.setTarget(i, null);
    for (const lun of this.removed) lun.close();
    this.removed = [];
  }
}

const NO_WAITER: ScsiTmfWaiter = { scsiTmfDone(): void {} };
