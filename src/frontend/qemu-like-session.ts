// Drives a back-end through the exact message sequence QEMU 10 sends (reference/vhost-user.md,
// "What QEMU sends, in order"): connect, start, stop. The queues (split, or packed with
// `packed: true`) live in a GuestMemoryArena. With a config space (blk), CONFIG_CHANGE_MSG on the
// back-end channel makes the session re-read the config as QEMU 10 does.
import { eventfdCreate } from '../sys/eventfd.ts';
import { closeFd } from '../sys/fd.ts';
import type { GuestMemoryArena } from './guest-memory-arena.ts';
import type { DriverQueue } from './driver-queue.ts';
import { DriverSplitQueue } from './driver-split-queue.ts';
import { DriverPackedQueue } from './driver-packed-queue.ts';
import { VhostUserClient, type BackendReply, type NeedReplyPolicy, type VhostUserMessage } from './vhost-user-client.ts';
import type { InflightInfo } from './vhost-user-payloads.ts';
import * as P from './vhost-user-protocol.ts';

export type QemuSessionErrorCode = 'TOO_MANY_QUEUES' | 'TOO_MANY_REGIONS' | 'NOT_STARTED' | 'ALREADY_STARTED' | 'FEATURE_NOT_OFFERED' | 'TIMEOUT';

export class QemuSessionError extends Error {
  readonly code: QemuSessionErrorCode;
  constructor(code: QemuSessionErrorCode, message: string) {
    super(message);
    this.name = 'QemuSessionError';
    this.code = code;
  }
}

/** Protocol features QEMU 10 supports for vhost-user-blk/scsi, and so does this front-end. */
export const FRONTEND_PROTOCOL_FEATURES =
  P.bit(P.VHOST_USER_PROTOCOL_F_MQ) | P.bit(P.VHOST_USER_PROTOCOL_F_LOG_SHMFD) | P.bit(P.VHOST_USER_PROTOCOL_F_REPLY_ACK) |
  P.bit(P.VHOST_USER_PROTOCOL_F_BACKEND_REQ) | P.bit(P.VHOST_USER_PROTOCOL_F_CONFIG) | P.bit(P.VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD) |
  P.bit(P.VHOST_USER_PROTOCOL_F_RESET_DEVICE) | P.bit(P.VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS) | P.bit(P.VHOST_USER_PROTOCOL_F_STATUS);

/** Ring features this driver implements, plus VERSION_1. */
export const FRONTEND_RING_FEATURES =
  P.bit(P.VIRTIO_F_VERSION_1) | P.bit(P.VIRTIO_RING_F_INDIRECT_DESC) | P.bit(P.VIRTIO_RING_F_EVENT_IDX);

export interface QemuLikeOptions {
  /** Connect to this socket, or use client (already connected). */
  socketPath?: string;
  client?: VhostUserClient;
  arena: GuestMemoryArena;
  /** Queue sizes by queue index; 0 marks a queue the guest never initialised (it gets CALL/ERR/ENABLE only). */
  queueSizes: readonly number[];
  /**
   * Packed rings: negotiates VIRTIO_F_RING_PACKED (connect fails with FEATURE_NOT_OFFERED when the
   * back-end does not offer it) and lays the queues out as DriverPackedQueues; SET_VRING_ADDR then
   * carries the driver event area as "avail" and the device event area as "used".
   */
  packed?: boolean;
  /** Virtio features the driver accepts (default FRONTEND_RING_FEATURES); the result is offered & wanted. */
  wantFeatures?: bigint;
  /** Acked even when not offered (vhost-user-scsi acks VERSION_1 and CHANGE regardless). */
  forceFeatures?: bigint;
  /** Protocol features the front-end accepts (default FRONTEND_PROTOCOL_FEATURES). */
  wantProtocolFeatures?: bigint;
  /** GET_CONFIG size at connect (vhost-user-blk: 57); 0 skips it (scsi). Needs CONFIG. */
  configSize?: number;
  /** Sends SET_STATUS(DRIVER_OK) on start and SET_STATUS(0) on stop, as QEMU 10 does for blk (needs STATUS). */
  driverOkStatus?: boolean;
  /** Do GET/SET_INFLIGHT_FD when INFLIGHT_SHMFD is negotiated (default true). */
  inflight?: boolean;
  /** Region for rings (default 0) and descriptors per indirect table (default 32). */
  ringRegion?: number;
  indirectMax?: number;
  replyTimeoutMs?: number;
  needReply?: NeedReplyPolicy;
  connectTimeoutMs?: number;
}

type PackedOpts = QemuLikeOptions & { packed: true };
type SplitOpts = QemuLikeOptions & { packed?: false };

/** Q is DriverSplitQueue or DriverPackedQueue per the packed option (DriverQueue when not known statically). */
export class QemuLikeSession<Q extends DriverQueue = DriverSplitQueue> {
  /** Replaced by reconnect(). */
  client: VhostUserClient;
  readonly arena: GuestMemoryArena;
  /** By queue index; null for queues the guest never initialised. */
  readonly queues: (Q | null)[];
  offeredFeatures = 0n;
  offeredProtocolFeatures = 0n;
  /** Features sent with SET_FEATURES (including PROTOCOL_FEATURES when offered). */
  features = 0n;
  protocolFeatures = 0n;
  queueNum = 0;
  maxMemSlots = 0;
  /** The device config space from GET_CONFIG (connect, and again on every CONFIG_CHANGE_MSG while started). */
  config: Uint8Array | null = null;
  /** Bumped each time a CONFIG_CHANGE_MSG made the session re-read the config. */
  configGeneration = 0;
  /** CONFIG_CHANGE_MSG requests received (also those ignored because the device was stopped). */
  configChangeMessages = 0;
  /** Called after a re-read config (the guest's config interrupt). */
  onConfigChange: ((config: Uint8Array) => void) | null = null;
  inflight: (InflightInfo & { fd: number }) | null = null;
  /** SET_VRING_BASE value per queue (updated by stop(); packed rings carry both wrap counters). */
  readonly vringBases: number[];
  started = false;
  private readonly opts: QemuLikeOptions;
  private readonly errFds: number[] = [];
  private readonly spareCallFds: number[] = [];
  private configWaiters: ((config: Uint8Array) => void)[] = [];

  private constructor(client: VhostUserClient, opts: QemuLikeOptions) {
    this.client = client;
    this.arena = opts.arena;
    this.opts = opts;
    const qo = (size: number) => ({ size, regionIndex: opts.ringRegion ?? 0, indirectMax: opts.indirectMax ?? 32 });
    this.queues = opts.queueSizes.map((size) =>
      size > 0 ? ((opts.packed ? new DriverPackedQueue(opts.arena, qo(size)) : new DriverSplitQueue(opts.arena, qo(size))) as DriverQueue as Q) : null);
    this.vringBases = this.queues.map((q) => (q ? q.initialVringBase : 0));
    // A handler the caller installed on its own client wins (hostile tests answer as they like).
    if (!client.onBackendRequest) client.onBackendRequest = (m) => this.onBackendRequest(m);
  }

  /** Connects and runs QEMU's connect sequence (no start). */
  static connect(opts: PackedOpts): Promise<QemuLikeSession<DriverPackedQueue>>;
  static connect(opts: SplitOpts): Promise<QemuLikeSession<DriverSplitQueue>>;
  static connect(opts: QemuLikeOptions): Promise<QemuLikeSession<DriverQueue>>;
  static async connect(opts: QemuLikeOptions): Promise<QemuLikeSession<DriverQueue>> {
    const client = opts.client ?? (await VhostUserClient.connect(opts.socketPath ?? '', {
      replyTimeoutMs: opts.replyTimeoutMs, needReply: opts.needReply, connectTimeoutMs: opts.connectTimeoutMs,
    }));
    const s = new QemuLikeSession<DriverQueue>(client, opts);
    try {
      await s.connectSequence();
    } catch (e) {
      s.close();
      throw e;
    }
    return s;
  }

  private async connectSequence(): Promise<void> {
    const c = this.client;
    const o = this.opts;
    this.offeredFeatures = await c.getFeatures();
    if (o.packed && !P.hasBit(this.offeredFeatures, P.VIRTIO_F_RING_PACKED)) {
      throw new QemuSessionError('FEATURE_NOT_OFFERED', `packed rings asked for, but the back-end does not offer VIRTIO_F_RING_PACKED (features 0x${this.offeredFeatures.toString(16)})`);
    }
    if (P.hasBit(this.offeredFeatures, P.VHOST_USER_F_PROTOCOL_FEATURES)) {
      this.offeredProtocolFeatures = await c.getProtocolFeatures();
      this.protocolFeatures = this.offeredProtocolFeatures & (o.wantProtocolFeatures ?? FRONTEND_PROTOCOL_FEATURES);
      await c.setProtocolFeatures(this.protocolFeatures);
      if (this.has(P.VHOST_USER_PROTOCOL_F_MQ)) {
        this.queueNum = await c.getQueueNum();
        if (this.queues.length > this.queueNum) {
          throw new QemuSessionError('TOO_MANY_QUEUES', `${this.queues.length} queues configured, back-end supports ${this.queueNum}`);
        }
      }
      if (this.has(P.VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS)) this.maxMemSlots = await c.getMaxMemSlots();
      if (this.has(P.VHOST_USER_PROTOCOL_F_BACKEND_REQ)) await c.openBackendChannel();
    }
    await c.setOwner();
    await c.getFeatures();
    for (let i = 0; i < this.queues.length; i++) {
      const q = this.queues[i];
      let call = q ? q.callFd : -1;
      if (call < 0) {
        call = eventfdCreate();
        this.spareCallFds.push(call);
      }
      const err = eventfdCreate();
      this.errFds.push(err);
      await c.setVringCall(i, call);
      await c.setVringErr(i, err);
    }
    if ((o.configSize ?? 0) > 0 && this.has(P.VHOST_USER_PROTOCOL_F_CONFIG)) this.config = await c.getConfig(0, o.configSize ?? 0);
  }

  has(protocolBit: number): boolean {
    return P.hasBit(this.protocolFeatures, protocolBit);
  }

  /** QEMU 10's start: SET_FEATURES, inflight, SET_FEATURES, memory, per queue NUM/BASE/ADDR/KICK, ENABLE(1), CALL. */
  async start(): Promise<void> {
    if (this.started) throw new QemuSessionError('ALREADY_STARTED', 'session already started');
    const c = this.client;
    const o = this.opts;
    const want = (o.wantFeatures ?? FRONTEND_RING_FEATURES) | (o.packed ? P.bit(P.VIRTIO_F_RING_PACKED) : 0n);
    this.features = (this.offeredFeatures & want) | (o.forceFeatures ?? 0n);
    if (P.hasBit(this.offeredFeatures, P.VHOST_USER_F_PROTOCOL_FEATURES)) this.features |= P.bit(P.VHOST_USER_F_PROTOCOL_FEATURES);
    const eventIdx = P.hasBit(this.features, P.VIRTIO_RING_F_EVENT_IDX);
    for (const q of this.queues) if (q) q.eventIdx = eventIdx;

    await this.setFeatures();
    if (this.has(P.VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD) && (o.inflight ?? true)) {
      // QEMU asks once and hands the same region back at every start (a restarted back-end finds
      // its predecessor's records there); it frees it only on a device reset.
      if (this.inflight === null || this.inflight.fd < 0) this.inflight = await c.getInflightFd(this.queues.length, Math.max(0, ...o.queueSizes));
      if (this.inflight.fd >= 0) await c.setInflightFd(this.inflight, this.inflight.fd);
    }
    await this.setFeatures();

    const regions = this.arena.regions;
    if (this.has(P.VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS)) {
      if (regions.length > this.maxMemSlots) throw new QemuSessionError('TOO_MANY_REGIONS', `${regions.length} regions, back-end has ${this.maxMemSlots} slots`);
      for (const r of regions) await c.addMemReg(r);
    } else {
      await c.setMemTable(regions);
    }

    for (let i = 0; i < this.queues.length; i++) {
      const q = this.queues[i];
      if (!q) continue;
      await c.setVringNum(i, q.size);
      await c.setVringBase(i, this.vringBases[i]);
      await c.setVringAddr({
        index: i,
        flags: 0,
        descUserAddr: this.arena.gpaToUser(q.descGpa),
        usedUserAddr: this.arena.gpaToUser(q.deviceAreaGpa),
        availUserAddr: this.arena.gpaToUser(q.driverAreaGpa),
        logGuestAddr: 0,
      });
      await c.setVringKick(i, q.kickFd);
    }
    for (let i = 0; i < this.queues.length; i++) await c.setVringEnable(i, true);
    if (o.driverOkStatus && this.has(P.VHOST_USER_PROTOCOL_F_STATUS)) {
      const s = await c.getStatus();
      await c.setStatus(s | P.VIRTIO_CONFIG_S_ACKNOWLEDGE | P.VIRTIO_CONFIG_S_DRIVER | P.VIRTIO_CONFIG_S_DRIVER_OK);
    }
    for (let i = 0; i < this.queues.length; i++) {
      const q = this.queues[i];
      if (q) await c.setVringCall(i, q.callFd);
    }
    this.started = true;
  }

  /** SET_FEATURES, then with STATUS: GET_STATUS and SET_STATUS(| FEATURES_OK), as QEMU does. */
  private async setFeatures(): Promise<void> {
    await this.client.setFeatures(this.features);
    if (this.has(P.VHOST_USER_PROTOCOL_F_STATUS)) {
      const s = await this.client.getStatus();
      await this.client.setStatus(s | P.VIRTIO_CONFIG_S_FEATURES_OK);
    }
  }

  /** ENABLE(0) for all queues, then GET_VRING_BASE per started queue; returns the bases (-1: not started). */
  async stop(): Promise<number[]> {
    if (!this.started) throw new QemuSessionError('NOT_STARTED', 'session is not started');
    const c = this.client;
    for (let i = 0; i < this.queues.length; i++) await c.setVringEnable(i, false);
    const bases: number[] = [];
    for (let i = 0; i < this.queues.length; i++) {
      if (!this.queues[i]) {
        bases.push(-1);
        continue;
      }
      const b = await c.getVringBase(i);
      this.vringBases[i] = b;
      bases.push(b);
    }
    if (this.opts.driverOkStatus && this.has(P.VHOST_USER_PROTOCOL_F_STATUS)) await c.setStatus(0);
    this.started = false;
    return bases;
  }

  /**
   * The back-end died (no stop): connects again (a restarted back-end on the same socket) and
   * starts as QEMU does then: every ring at the used.idx in guest memory, the inflight region kept.
   * Split rings only (QEMU restores packed rings the same way, not modelled here).
   */
  async reconnect(socketPath: string): Promise<void> {
    if (this.opts.packed) throw new QemuSessionError('FEATURE_NOT_OFFERED', 'reconnect is modelled for split rings only');
    this.client.close();
    for (const f of this.errFds.splice(0)) closeFd(f);
    for (const f of this.spareCallFds.splice(0)) closeFd(f);
    this.started = false;
    for (let i = 0; i < this.queues.length; i++) {
      const q = this.queues[i];
      if (q instanceof DriverSplitQueue) this.vringBases[i] = q.ringUsedIdx;
    }
    const o = this.opts;
    this.client = await VhostUserClient.connect(socketPath, { replyTimeoutMs: o.replyTimeoutMs, needReply: o.needReply, connectTimeoutMs: o.connectTimeoutMs });
    this.client.onBackendRequest = (m) => this.onBackendRequest(m);
    await this.connectSequence();
    await this.start();
  }

  /**
   * A back-end request: CONFIG_CHANGE_MSG re-reads the config (QEMU 10: the whole config, only
   * while started) before the reply goes out; without a config space (scsi) QEMU has no handler and
   * answers failure, as it does for any other request.
   */
  private async onBackendRequest(m: VhostUserMessage): Promise<BackendReply> {
    if (m.request !== P.VHOST_USER_BACKEND_CONFIG_CHANGE_MSG) return 1;
    this.configChangeMessages++;
    const size = this.opts.configSize ?? 0;
    if (size <= 0 || !this.has(P.VHOST_USER_PROTOCOL_F_CONFIG)) return 1;
    if (!this.started) return 0;
    const config = await this.client.getConfig(0, size);
    this.config = config;
    this.configGeneration++;
    for (const w of this.configWaiters.splice(0)) w(config);
    this.onConfigChange?.(config);
    return 0;
  }

  /** Resolves with the config after the next CONFIG_CHANGE_MSG re-read (TIMEOUT after timeoutMs). */
  waitForConfigChange(timeoutMs = 5000): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      const waiter = (c: Uint8Array): void => {
        clearTimeout(timer);
        resolve(c);
      };
      const timer = setTimeout(() => {
        this.configWaiters = this.configWaiters.filter((w) => w !== waiter);
        reject(new QemuSessionError('TIMEOUT', `no config change within ${timeoutMs} ms`));
      }, timeoutMs);
      this.configWaiters.push(waiter);
    });
  }

  /** Closes the connection, the queues' eventfds and the session's own fds (not the arena). */
  close(): void {
    this.client.close();
    for (const q of this.queues) q?.close();
    for (const f of this.errFds.splice(0)) closeFd(f);
    for (const f of this.spareCallFds.splice(0)) closeFd(f);
    if (this.inflight && this.inflight.fd >= 0) closeFd(this.inflight.fd);
    this.inflight = null;
  }
}

/** Connects like QEMU and starts every initialised queue. */
export function connectLikeQemu(opts: PackedOpts): Promise<QemuLikeSession<DriverPackedQueue>>;
export function connectLikeQemu(opts: SplitOpts): Promise<QemuLikeSession<DriverSplitQueue>>;
export function connectLikeQemu(opts: QemuLikeOptions): Promise<QemuLikeSession<DriverQueue>>;
export async function connectLikeQemu(opts: QemuLikeOptions): Promise<QemuLikeSession<DriverQueue>> {
  const s = await QemuLikeSession.connect(opts);
  try {
    await s.start();
  } catch (e) {
    s.close();
    throw e;
  }
  return s;
}
