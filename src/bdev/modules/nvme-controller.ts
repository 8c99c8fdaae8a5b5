// An NVMe/TCP controller attached by bdev_nvme_attach_controller (main thread): the admin queue,
// controller enable, Identify, the I/O queue count, Keep Alive, and reconnects. The I/O queues
// belong to the namespaces' channels on the reactors (nvme-channel.ts); they learn of a reset
// through the shared generation word and ask for one through CTL_RESET_REQ. A reset is SPDK's:
// the admin queue connects again (a new controller ID), at once and then every
// reconnect_delay_sec; past fast_io_fail_timeout_sec held I/O fails; past ctrlr_loss_timeout_sec
// (-1: never) the controller is failed for good and I/O fails with EIO until it is detached.
import { randomUUID } from 'node:crypto';
import { componentLogger } from '../../log/logger.ts';
import { describeTarget, type StreamTarget } from '../../sys/stream-socket.ts';
import { NvmeAdminQueue } from './nvme-admin-queue.ts';
import { uuidBytes } from './nvme-connect.ts';
import { NvmeError } from './nvme-error.ts';
import {
  CTL_CHANNELS,
  CTL_CNTLID,
  CTL_FAIL_FAST,
  CTL_FAILED_IOS,
  CTL_GEN,
  CTL_IO_ERRORS,
  CTL_LAST_ERRNO,
  CTL_LAST_STATUS,
  CTL_MAX_QID,
  CTL_QUEUE_LOSSES,
  CTL_QUEUES,
  CTL_RESENT,
  CTL_RESET_REQ,
  CTL_STATE,
  CTL_WORDS,
  CTRL_STATE_DELETING,
  CTRL_STATE_ENABLED,
  CTRL_STATE_FAILED,
  CTRL_STATE_RESETTING,
  MAX_IO_QUEUES,
} from './nvme-shared.ts';
import {
  CC_EN,
  CC_IO_ENTRY_SIZES,
  CC_SHN_NORMAL,
  CNS_ACTIVE_NS_LIST,
  CNS_CONTROLLER,
  CNS_NAMESPACE,
  CSTS_CFS,
  CSTS_RDY,
  CSTS_SHST_COMPLETE,
  CSTS_SHST_MASK,
  FEAT_NUMBER_OF_QUEUES,
  nvmeStatusName,
  parseIdentifyController,
  parseIdentifyNamespace,
  PROP_CAP,
  PROP_CC,
  PROP_CSTS,
  PROP_VS,
  type IdentifyController,
  type IdentifyNamespace,
} from './nvme-spec.ts';
import { errnoName } from '../../sys/errno.ts';

const log = componentLogger('bdev_nvme');

export interface NvmeControllerOptions {
  name: string;
  target: StreamTarget;
  /** As given (for get_controllers and save_config). */
  traddr: string;
  trsvcid: string;
  adrfam: 'IPv4' | 'IPv6';
  subnqn: string;
  hostnqn: string;
  hostid: string;
  headerDigest: boolean;
  dataDigest: boolean;
  /** I/O queues asked for (Set Features Number of Queues). */
  numIoQueues: number;
  ioQueueSize: number;
  /** -1: reconnect forever; 0: one reset attempt. */
  ctrlrLossTimeoutSec: number;
  reconnectDelaySec: number;
  /** 0: held I/O waits as long as reconnects go on. */
  fastIoFailTimeoutSec: number;
  connectTimeoutMs: number;
  keepAliveTimeoutMs: number;
}

export interface NvmeNamespace {
  nsid: number;
  data: IdentifyNamespace;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Every attached controller of the process: what shutdown notifies and closes. */
const live = new Set<NvmeController>();

/**
 * At daemon exit: each attached controller gets a normal shutdown notification (CC.SHN) and its
 * admin queue closes. Resolves false when some did not finish within `ms` (a target out of reach).
 */
export async function shutdownNvmeControllers(ms: number): Promise<boolean> {
  const all = Promise.all([...live].map((c) => c.detach())).then(() => true);
  return Promise.race([all, sleep(ms).then(() => false)]);
}

export class NvmeController {
  readonly name: string;
  readonly options: NvmeControllerOptions;
  readonly control = new SharedArrayBuffer(CTL_WORDS * 4);
  readonly #ctl = new Int32Array(this.control);
  readonly hostidBytes: Uint8Array;
  admin: NvmeAdminQueue | null = null;
  cdata: IdentifyController | null = null;
  cap = 0n;
  vs = 0;
  namespaces: NvmeNamespace[] = [];
  resets = 0;
  lastResetReason: string | null = null;
  #keepAlive: NodeJS.Timeout | null = null;
  #resetting: Promise<void> | null = null;
  #resetSeen = 0;
  #stopWatch = false;
  #outageStart = 0;

  constructor(options: NvmeControllerOptions) {
    this.name = options.name;
    this.options = options;
    this.hostidBytes = uuidBytes(options.hostid);
    Atomics.store(this.#ctl, CTL_GEN, 1);
    Atomics.store(this.#ctl, CTL_STATE, CTRL_STATE_RESETTING);
  }

  get state(): string {
    switch (Atomics.load(this.#ctl, CTL_STATE)) {
      case CTRL_STATE_ENABLED:
        return 'enabled';
      case CTRL_STATE_RESETTING:
        return 'resetting';
      case CTRL_STATE_FAILED:
        return 'failed';
      default:
        return 'deleting';
    }
  }

  get cntlid(): number {
    return Atomics.load(this.#ctl, CTL_CNTLID);
  }

  /** First connect: any failure is the caller's error (nothing retries). */
  async attach(): Promise<void> {
    await this.#bringUp();
    live.add(this);
    this.#live();
    void this.#watchResetRequests();
  }

  /** Admin queue up, controller enabled, identified, I/O queues granted. */
  async #bringUp(): Promise<void> {
    const o = this.options;
    const admin = await NvmeAdminQueue.open({
      target: o.target,
      subnqn: o.subnqn,
      hostnqn: o.hostnqn,
      hostid: this.hostidBytes,
      katoMs: o.keepAliveTimeoutMs,
      headerDigest: o.headerDigest,
      dataDigest: o.dataDigest,
      timeoutMs: o.connectTimeoutMs,
    });
    try {
      this.cap = await admin.propertyGet(PROP_CAP, true);
      this.vs = Number(await admin.propertyGet(PROP_VS, false));
      // CAP.TO: worst-case time to become ready, in 500 ms units.
      const readyMs = Math.max(1000, Number((this.cap >> 24n) & 0xffn) * 500);
      await admin.propertySet(PROP_CC, CC_IO_ENTRY_SIZES | CC_EN);
      const until = Date.now() + readyMs;
      for (;;) {
        const csts = Number(await admin.propertyGet(PROP_CSTS, false));
        if ((csts & CSTS_CFS) !== 0) throw new NvmeError('NVME_COMMAND_FAILED', `${admin.where}: controller fatal status while enabling`, 5);
        if ((csts & CSTS_RDY) !== 0) break;
        if (Date.now() > until) throw new NvmeError('NVME_TIMEOUT', `${admin.where}: controller not ready within ${readyMs} ms (CAP.TO)`, 110);
        await sleep(10);
      }
      const cdata = parseIdentifyController(await admin.identify(CNS_CONTROLLER, 0));
      const want = Math.min(o.numIoQueues, MAX_IO_QUEUES - 1);
      const granted = await admin.setFeatures(FEAT_NUMBER_OF_QUEUES, ((want - 1) << 16) | (want - 1));
      const nsq = (granted & 0xffff) + 1;
      const ncq = (granted >>> 16) + 1;
      const queues = Math.min(want, nsq, ncq);
      const list = await admin.identify(CNS_ACTIVE_NS_LIST, 0);
      const ldv = new DataView(list.buffer, list.byteOffset, list.length);
      const namespaces: NvmeNamespace[] = [];
      for (let i = 0; i < 1024; i++) {
        const nsid = ldv.getUint32(i * 4, true);
        if (nsid === 0) break;
        const data = parseIdentifyNamespace(await admin.identify(CNS_NAMESPACE, nsid));
        if (data.nsze > 0) namespaces.push({ nsid, data });
      }
      this.#checkSameNamespaces(namespaces);
      this.cdata = cdata;
      this.namespaces = namespaces;
      Atomics.store(this.#ctl, CTL_MAX_QID, queues);
      Atomics.store(this.#ctl, CTL_CNTLID, admin.cntlid);
      this.admin = admin;
    } catch (e) {
      admin.close();
      throw e;
    }
    admin.onLost((why) => this.requestReset(`admin queue lost: ${why}`));
    this.#startKeepAlive();
  }

  /** After a reconnect the namespaces the bdevs stand for must still be there, as large and with the same block size. */
  #checkSameNamespaces(now: NvmeNamespace[]): void {
    for (const old of this.namespaces) {
      const n = now.find((x) => x.nsid === old.nsid);
      if (!n) throw new NvmeError('NVME_NO_NAMESPACES', `namespace ${old.nsid} is gone from ${this.options.subnqn}`, 19);
      if (n.data.lbaBytes !== old.data.lbaBytes || n.data.nsze < old.data.nsze) {
        throw new NvmeError('NVME_UNSUPPORTED', `namespace ${old.nsid} changed: ${n.data.nsze} x ${n.data.lbaBytes} bytes, was ${old.data.nsze} x ${old.data.lbaBytes}`, 19);
      }
    }
  }

  #live(): void {
    Atomics.store(this.#ctl, CTL_FAIL_FAST, 0);
    Atomics.store(this.#ctl, CTL_STATE, CTRL_STATE_ENABLED);
    // Even: live. Channels compare it with the generation their queue connected under.
    Atomics.store(this.#ctl, CTL_GEN, (Atomics.load(this.#ctl, CTL_GEN) + 1) | 0);
  }

  #startKeepAlive(): void {
    this.#stopKeepAlive();
    const kato = this.options.keepAliveTimeoutMs;
    if (kato <= 0 || (this.cdata !== null && this.cdata.kas === 0)) return;
    // Well inside the timeout, as SPDK (KATO / 2).
    this.#keepAlive = setInterval(() => {
      const a = this.admin;
      if (!a || a.closed) return;
      a.keepAlive().catch((e: Error) => this.requestReset(`Keep Alive failed: ${e.message}`));
    }, Math.max(100, Math.floor(kato / 2)));
    this.#keepAlive.unref();
  }

  #stopKeepAlive(): void {
    if (this.#keepAlive) clearInterval(this.#keepAlive);
    this.#keepAlive = null;
  }

  /** Channels ask for a reset through the control word; wait for their requests off the event loop. */
  async #watchResetRequests(): Promise<void> {
    this.#resetSeen = Atomics.load(this.#ctl, CTL_RESET_REQ);
    while (!this.#stopWatch) {
      const r = Atomics.waitAsync(this.#ctl, CTL_RESET_REQ, this.#resetSeen, 1000);
      if (r.async) await r.value;
      if (this.#stopWatch) return;
      const now = Atomics.load(this.#ctl, CTL_RESET_REQ);
      if (now !== this.#resetSeen) {
        this.#resetSeen = now;
        if (Atomics.load(this.#ctl, CTL_STATE) === CTRL_STATE_ENABLED) this.requestReset('an I/O queue broke');
      }
    }
  }

  /** Starts a reset unless one runs (or the controller failed or is being deleted). */
  requestReset(why: string): void {
    const st = Atomics.load(this.#ctl, CTL_STATE);
    if (this.#resetting || st === CTRL_STATE_DELETING || st === CTRL_STATE_FAILED) return;
    this.#resetting = this.#reset(why).finally(() => {
      this.#resetting = null;
    });
  }

  async #reset(why: string): Promise<void> {
    this.resets++;
    this.lastResetReason = why;
    this.#outageStart = Date.now();
    Atomics.store(this.#ctl, CTL_STATE, CTRL_STATE_RESETTING);
    Atomics.store(this.#ctl, CTL_GEN, (Atomics.load(this.#ctl, CTL_GEN) + 1) | 0);
    this.#stopKeepAlive();
    this.admin?.close();
    this.admin = null;
    const o = this.options;
    log.warn({ ctrlr: this.name, target: describeTarget(o.target) }, `resetting: ${why}`);
    let attempt = 0;
    for (;;) {
      if (Atomics.load(this.#ctl, CTL_STATE) === CTRL_STATE_DELETING) return;
      if (attempt > 0) await sleep(o.reconnectDelaySec * 1000);
      if (Atomics.load(this.#ctl, CTL_STATE) === CTRL_STATE_DELETING) return;
      attempt++;
      try {
        await this.#bringUp();
        if (Atomics.load(this.#ctl, CTL_STATE) === CTRL_STATE_DELETING) {
          (this.admin as NvmeAdminQueue | null)?.close();
          return;
        }
        this.#live();
        log.info({ ctrlr: this.name, cntlid: this.cntlid, attempts: attempt }, `reconnected after ${((Date.now() - this.#outageStart) / 1000).toFixed(1)} s`);
        return;
      } catch (e) {
        const err = e as NvmeError;
        if (typeof err.errno === 'number') Atomics.store(this.#ctl, CTL_LAST_ERRNO, err.errno);
        const away = (Date.now() - this.#outageStart) / 1000;
        if (attempt === 1 || attempt % 10 === 0) log.warn({ ctrlr: this.name, attempt, away_sec: Math.round(away) }, `reconnect failed: ${err.message}`);
        if (o.fastIoFailTimeoutSec > 0 && away >= o.fastIoFailTimeoutSec) Atomics.store(this.#ctl, CTL_FAIL_FAST, 1);
        if (o.ctrlrLossTimeoutSec === 0 || (o.ctrlrLossTimeoutSec > 0 && away >= o.ctrlrLossTimeoutSec)) {
          Atomics.store(this.#ctl, CTL_STATE, CTRL_STATE_FAILED);
          log.error({ ctrlr: this.name }, `controller lost for good after ${Math.round(away)} s (ctrlr_loss_timeout_sec ${o.ctrlrLossTimeoutSec}): its bdevs fail I/O until it is detached`);
          return;
        }
      }
    }
  }

  /** Detach: stops reconnecting, shuts the controller down (best effort) and closes the admin queue. */
  async detach(): Promise<void> {
    live.delete(this);
    Atomics.store(this.#ctl, CTL_STATE, CTRL_STATE_DELETING);
    Atomics.store(this.#ctl, CTL_GEN, (Atomics.load(this.#ctl, CTL_GEN) + 1) | 0);
    this.#stopWatch = true;
    Atomics.notify(this.#ctl, CTL_RESET_REQ);
    this.#stopKeepAlive();
    const a = this.admin;
    this.admin = null;
    if (a && !a.closed) {
      try {
        await a.propertySet(PROP_CC, CC_IO_ENTRY_SIZES | CC_EN | CC_SHN_NORMAL);
        const until = Date.now() + 2000;
        while (Date.now() < until) {
          const csts = Number(await a.propertyGet(PROP_CSTS, false));
          if ((csts & CSTS_SHST_MASK) === CSTS_SHST_COMPLETE) break;
          await sleep(10);
        }
      } catch (e) {
        log.debug({ ctrlr: this.name, err: (e as Error).message }, 'shutdown notification not completed');
      }
      a.close();
    }
    await this.#resetting;
  }

  /** One element of bdev_nvme_get_controllers' ctrlrs (SPDK's fields, then vhostd's). */
  ctrlrInfo(): Record<string, unknown> {
    const o = this.options;
    const c = this.#ctl;
    const lastStatus = Atomics.load(c, CTL_LAST_STATUS);
    const lastErrno = Atomics.load(c, CTL_LAST_ERRNO);
    return {
      state: this.state,
      trid: { trtype: 'TCP', adrfam: o.adrfam, traddr: o.traddr, trsvcid: o.trsvcid, subnqn: o.subnqn },
      cntlid: this.cntlid,
      host: { nqn: o.hostnqn, addr: '', svcid: '' },
      vhostd: {
        hostid: o.hostid,
        header_digest: o.headerDigest,
        data_digest: o.dataDigest,
        io_queues_granted: Atomics.load(c, CTL_MAX_QID),
        io_queues_connected: Atomics.load(c, CTL_QUEUES),
        channels: Atomics.load(c, CTL_CHANNELS),
        io_queue_size: o.ioQueueSize,
        resets: this.resets,
        last_reset_reason: this.lastResetReason,
        queue_losses: Atomics.load(c, CTL_QUEUE_LOSSES),
        resent_requests: Atomics.load(c, CTL_RESENT),
        failed_requests: Atomics.load(c, CTL_FAILED_IOS),
        error_completions: Atomics.load(c, CTL_IO_ERRORS),
        last_error_status: lastStatus === 0 ? null : nvmeStatusName(lastStatus),
        last_error: lastErrno === 0 ? null : errnoName(lastErrno),
        ctrlr_loss_timeout_sec: o.ctrlrLossTimeoutSec,
        reconnect_delay_sec: o.reconnectDelaySec,
        fast_io_fail_timeout_sec: o.fastIoFailTimeoutSec,
        keep_alive_timeout_ms: o.keepAliveTimeoutMs,
      },
    };
  }
}

/** A host identifier for a host NQN: the UUID in an nqn.2014-08.org.nvmexpress:uuid: NQN, else a new one. */
export function hostidFor(hostnqn: string): string {
  const m = /^nqn\.2014-08\.org\.nvmexpress:uuid:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i.exec(hostnqn);
  return m ? m[1].toLowerCase() : randomUUID();
}

/** bdev_nvme_attach_controller's controllers by name (main thread). */
export class NvmeControllerRegistry {
  readonly #byName = new Map<string, NvmeController>();

  get(name: string): NvmeController | undefined {
    return this.#byName.get(name);
  }

  require(name: string): NvmeController {
    const c = this.#byName.get(name);
    if (!c) throw new NvmeError('NVME_CONTROLLER_NOT_FOUND', `no NVMe controller named '${name}'`, 19);
    return c;
  }

  add(c: NvmeController): void {
    if (this.#byName.has(c.name)) throw new NvmeError('NVME_CONTROLLER_EXISTS', `an NVMe controller named '${c.name}' already exists`, 17);
    this.#byName.set(c.name, c);
  }

  remove(name: string): void {
    this.#byName.delete(name);
  }

  list(): NvmeController[] {
    return [...this.#byName.values()];
  }
}
