// A SCSI target (a virtio-scsi "target" id): its LUN map, the null-LUN responder for ids without
// a LUN, REPORT LUNS data shared by all of them, and task management routed per LUN.
import type { ScsiTask } from './scsi-task.ts';
import type { ScsiLun } from './scsi-lun.ts';
import type { ScsiTmfWaiter } from './task-management.ts';
import { TmfJoin } from './task-management.ts';
import { ScsiNullLun } from './null-lun.ts';
import { buildReportLunsData } from './report-luns.ts';
import { ScsiConfigError } from './scsi-errors.ts';
import { SCSI_ASC_REPORTED_LUNS_DATA_HAS_CHANGED, SCSI_TMF_INCORRECT_LUN } from './scsi-constants.ts';

export class ScsiTarget {
  readonly num: number;
  readonly name: string;
  readonly nullLun: ScsiNullLun;
  private readonly luns = new Map<number, ScsiLun>();
  /** The LUNs as an array for poll(), which runs every loop turn (a Map iterator there cost ~7% of an idle turn). */
  private lunList: ScsiLun[] = [];

  constructor(num: number, name: string) {
    if (!Number.isInteger(num) || num < 0 || num > 255) {
      throw new ScsiConfigError('SCSI_BAD_TARGET', `SCSI target number must be an integer 0..255, got ${String(num)}`);
    }
    if (typeof name !== 'string' || name.length === 0) throw new ScsiConfigError('SCSI_BAD_TARGET', 'SCSI target name must be a non-empty string');
    this.num = num;
    this.name = name;
    this.nullLun = new ScsiNullLun(buildReportLunsData([]));
  }

  /** Adds a LUN; the other LUNs report REPORTED LUNS DATA HAS CHANGED. */
  addLun(lun: ScsiLun): void {
    if (this.luns.has(lun.id)) throw new ScsiConfigError('SCSI_LUN_EXISTS', `target ${this.name}: LUN ${lun.id} already exists`);
    for (const other of this.luns.values()) other.unitAttention.push(SCSI_ASC_REPORTED_LUNS_DATA_HAS_CHANGED);
    this.luns.set(lun.id, lun);
    this.lunList = [...this.luns.values()];
    this.rebuildReportLuns();
  }

  /**
   * Removes a LUN and returns it. Tasks still running on it complete normally; callers that need
   * it idle first run lunReset() and wait for its completion.
   */
  removeLun(id: number): ScsiLun {
    const lun = this.luns.get(id);
    if (lun === undefined) throw new ScsiConfigError('SCSI_LUN_NOT_FOUND', `target ${this.name}: no LUN ${id}`);
    this.luns.delete(id);
    this.lunList = [...this.luns.values()];
    for (const other of this.luns.values()) other.unitAttention.push(SCSI_ASC_REPORTED_LUNS_DATA_HAS_CHANGED);
    this.rebuildReportLuns();
    return lun;
  }

  getLun(id: number): ScsiLun | null {
    return this.luns.get(id) ?? null;
  }

  lunIds(): number[] {
    return [...this.luns.keys()].sort((a, b) => a - b);
  }

  get lunCount(): number {
    return this.luns.size;
  }

  /** Runs a command on LUN lunId, or on the null LUN when there is none. */
  execute(lunId: number, task: ScsiTask): void {
    const lun = this.luns.get(lunId);
    if (lun !== undefined) lun.execute(task);
    else this.nullLun.execute(task);
  }

  /** Reaps asynchronous bdev completions of every LUN. */
  poll(): number {
    let n = 0;
    const list = this.lunList;
    for (let i = 0; i < list.length; i++) n += list[i].poll();
    return n;
  }

  /** The reactor sleeps with nothing in flight (true) or woke (false); the LUNs tell their other reactors. */
  setAsleep(asleep: boolean): void {
    const list = this.lunList;
    for (let i = 0; i < list.length; i++) list[i].setAsleep(asleep);
  }

  abortTask(lunId: number, tagLo: number, tagHi: number, waiter: ScsiTmfWaiter): void {
    const lun = this.luns.get(lunId);
    if (lun === undefined) waiter.scsiTmfDone(SCSI_TMF_INCORRECT_LUN);
    else lun.abortTask(tagLo, tagHi, waiter);
  }

  abortTaskSet(lunId: number, waiter: ScsiTmfWaiter): void {
    const lun = this.luns.get(lunId);
    if (lun === undefined) waiter.scsiTmfDone(SCSI_TMF_INCORRECT_LUN);
    else lun.abortTaskSet(waiter);
  }

  lunReset(lunId: number, waiter: ScsiTmfWaiter): void {
    const lun = this.luns.get(lunId);
    if (lun === undefined) waiter.scsiTmfDone(SCSI_TMF_INCORRECT_LUN);
    else lun.lunReset(waiter);
  }

  queryTask(lunId: number, tagLo: number, tagHi: number, waiter: ScsiTmfWaiter): void {
    const lun = this.luns.get(lunId);
    if (lun === undefined) waiter.scsiTmfDone(SCSI_TMF_INCORRECT_LUN);
    else lun.queryTask(tagLo, tagHi, waiter);
  }

  queryTaskSet(lunId: number, waiter: ScsiTmfWaiter): void {
    const lun = this.luns.get(lunId);
    if (lun === undefined) waiter.scsiTmfDone(SCSI_TMF_INCORRECT_LUN);
    else lun.queryTaskSet(waiter);
  }

  /** TARGET RESET: a LOGICAL UNIT RESET of every LUN; completes when all have. */
  targetReset(waiter: ScsiTmfWaiter): void {
    const luns = [...this.luns.values()];
    const join = new TmfJoin(luns.length, waiter);
    for (const lun of luns) lun.lunReset(join);
  }

  /** I_T NEXUS RESET: aborts every task on every LUN; completes when all have. */
  nexusReset(waiter: ScsiTmfWaiter): void {
    const luns = [...this.luns.values()];
    const join = new TmfJoin(luns.length, waiter);
    for (const lun of luns) lun.nexusLoss(join);
  }

  private rebuildReportLuns(): void {
    const data = buildReportLunsData([...this.luns.keys()]);
    this.nullLun.reportLunsData = data;
    for (const lun of this.luns.values()) lun.reportLunsData = data;
  }
}
