// One front-end connection: reads messages one at a time (device calls are awaited before the next
// message is read), keeps the protocol state (features, memory table, rings, fds) and drives the
// device. Runs on the main thread.
import type { Logger } from '../log/logger.ts';
import { closeFd, setNonBlocking } from '../sys/fd.ts';
import { watchReadable, type FdWatch } from '../sys/fd-watch.ts';
import { sendWithFds } from '../sys/unix-socket.ts';
import { BackendChannel } from './backend-channel.ts';
import type { VhostUserDevice } from './device.ts';
import { closeRegionFdsNotIn, deviceCopy, MemoryTable, validateTable, type TableRegion } from './memory-table.ts';
import * as M from './message.ts';
import { END_OF_STREAM, MessageReader } from './message-reader.ts';
import * as T from './message-types.ts';
import { deviceCall, VhostUserProtocolError } from './protocol-error.ts';
import { VringSet } from './vring-set.ts';
import { inflightQueueBytes } from '../virtio/split-inflight.ts';
import { memfdCreate } from '../sys/memory.ts';

const { bit } = T;

/** Queue count and size a front-end may ask an inflight region for. */
function validateInflightShape(d: M.InflightDesc, maxQueues: number): void {
  if (d.numQueues < 1 || d.numQueues > maxQueues) {
    throw new VhostUserProtocolError('BAD_INFLIGHT', `inflight region for ${d.numQueues} queue(s); the device has at most ${maxQueues}`);
  }
  if (d.queueSize < 1 || d.queueSize > 32768) throw new VhostUserProtocolError('BAD_INFLIGHT', `inflight region for queues of ${d.queueSize}; 1-32768 allowed`);
  if (d.mmapOffset % 4096 !== 0) throw new VhostUserProtocolError('BAD_INFLIGHT', `inflight mmap offset ${d.mmapOffset} is not page-aligned`);
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export class VhostUserConnection {
  readonly fd: number;
  private readonly device: VhostUserDevice;
  private readonly log: Logger;
  private readonly onClosed: (reason: string) => void;
  private readonly reader = new MessageReader();
  private readonly memory = new MemoryTable();
  private readonly rings: VringSet;
  private backend: BackendChannel | null = null;
  private watch: FdWatch | null = null;
  /** The read/dispatch loop while it runs; resolves with a reason to close, or null. */
  private loop: Promise<string | null> | null = null;
  private closing = false;
  private teardown: Promise<void> | null = null;
  private ackedFeatures = 0n;
  private ackedProtocolFeatures = 0n;
  private owner = false;
  private status = 0;
  /** File descriptors to send with the reply being built (GET_INFLIGHT_FD). */
  private readonly replyFds: number[] = [];

  /** Takes ownership of fd (a connected stream socket). onClosed runs once, after teardown. */
  constructor(fd: number, device: VhostUserDevice, logger: Logger, onClosed: (reason: string) => void = () => {}) {
    this.fd = fd;
    this.device = device;
    this.log = logger;
    this.onClosed = onClosed;
    this.rings = new VringSet(device, logger, () => this.ackedFeatures);
  }

  /** Tells the device a front-end connected and starts reading messages. */
  start(): void {
    setNonBlocking(this.fd);
    this.device.connected();
    this.pump();
  }

  get closed(): boolean {
    return this.closing;
  }

  /** Virtio features acked by SET_FEATURES. */
  get features(): bigint {
    return this.ackedFeatures;
  }

  get protocolFeatures(): bigint {
    return this.ackedProtocolFeatures;
  }

  /** Rings the device is processing now. */
  get runningRings(): number {
    return this.rings.running;
  }

  /**
   * Sends a back-end request (e.g. CONFIG_CHANGE_MSG) on the SET_BACKEND_REQ_FD socket.
   * Returns false when there is no such socket or sending failed (logged).
   */
  sendBackendRequest(request: number, payload: Uint8Array = new Uint8Array(0), fds: readonly number[] = []): boolean {
    if (this.backend === null || this.closing) return false;
    try {
      this.backend.send(request, payload, fds);
      return true;
    } catch (e) {
      this.log.warn({ err: e, request }, 'back-end request failed');
      return false;
    }
  }

  /**
   * Disconnects: lets the message in progress finish, stops every running ring, tells the device,
   * and closes every fd. Idempotent; resolves when done.
   */
  close(reason = 'closed by the back-end'): Promise<void> {
    if (this.teardown === null) {
      this.closing = true;
      this.disarm();
      this.teardown = this.tearDown(reason);
    }
    return this.teardown;
  }

  // ---- reading ----

  private readonly onReadable = (): void => {
    // While a message is being handled the loop reads on by itself; a level-triggered watch
    // would fire again and again, so it is dropped and re-armed when the loop runs dry.
    if (this.loop !== null) this.disarm();
    else this.pump();
  };

  private arm(): void {
    if (this.watch === null && !this.closing) this.watch = watchReadable(this.fd, this.onReadable);
  }

  private disarm(): void {
    this.watch?.stop();
    this.watch = null;
  }

  private pump(): void {
    if (this.loop !== null || this.closing) return;
    this.loop = this.runLoop();
    void this.loop.then((endReason) => {
      this.loop = null;
      if (endReason !== null) void this.close(endReason);
      else this.arm();
    });
  }

  private async runLoop(): Promise<string | null> {
    try {
      while (!this.closing) {
        const msg = this.reader.read(this.fd);
        if (msg === null) return null;
        if (msg === END_OF_STREAM) {
          return this.reader.partial ? 'front-end closed the connection in the middle of a message' : 'front-end closed the connection';
        }
        const fatal = await this.dispatch(msg);
        if (fatal !== null) return fatal;
      }
      return null;
    } catch (e) {
      const code = e instanceof VhostUserProtocolError ? e.code : e instanceof Error && 'code' in e ? String(e.code) : 'ERROR';
      return `${code}: ${errorText(e)}`;
    }
  }

  private send(bytes: Uint8Array): void {
    sendWithFds(this.fd, bytes);
  }

  /** Handles one message and sends its reply. Returns a reason to close the connection, or null. */
  private async dispatch(msg: M.VhostUserMessage): Promise<string | null> {
    const name = T.requestName(msg.request);
    const mandatory = T.hasMandatoryReply(msg.request);
    const ack = !mandatory && M.needsReply(msg.flags) && this.hasProtocolFeature(T.VHOST_USER_PROTOCOL_F_REPLY_ACK);
    this.log.debug({ request: name, flags: msg.flags, size: msg.size, fds: msg.fds.length }, 'message');
    let reply: Uint8Array | null = null;
    let failed = false;
    let failure: unknown;
    try {
      reply = await this.handle(msg, name);
    } catch (e) {
      failed = true;
      failure = e;
    } finally {
      if (msg.fds.length > 0) {
        this.log.debug({ request: name, count: msg.fds.length }, 'closing file descriptors the message did not need');
        for (const f of msg.fds) closeFd(f);
        msg.fds.length = 0;
      }
    }
    // The peer has its own copies of these once the reply is sent; ours are closed either way.
    const fds = this.replyFds.splice(0);
    try {
      if (failed) {
        const code = failure instanceof VhostUserProtocolError ? failure.code : 'ERROR';
        this.log.warn({ request: name, code, err: failure }, `${name} failed: ${errorText(failure)}`);
        if (mandatory) {
          // GET_CONFIG has a failure reply (an empty payload); the other GET_* have none, and the
          // front-end blocks on the reply, so the only honest answer is to hang up.
          if (msg.request !== T.VHOST_USER_GET_CONFIG) return `${name} failed and has no failure reply: ${errorText(failure)}`;
          reply = new Uint8Array(0);
        }
      }
      if (mandatory) sendWithFds(this.fd, M.encodeReply(msg.request, reply ?? new Uint8Array(0)), failed ? [] : fds);
      else if (ack) this.send(M.encodeReply(msg.request, M.encodeU64(failed ? 1n : 0n)));
    } finally {
      for (const f of fds) closeFd(f);
    }
    return null;
  }

  // ---- requests ----

  /** Returns the payload of a mandatory reply, or null. Throws for a failed request. */
  private async handle(msg: M.VhostUserMessage, name: string): Promise<Uint8Array | null> {
    const p = msg.payload;
    M.validatePayloadSize(msg.request, p);
    switch (msg.request) {
      case T.VHOST_USER_GET_FEATURES:
        return M.encodeU64(this.offeredFeatures());
      case T.VHOST_USER_SET_FEATURES:
        await this.setFeatures(M.decodeU64(p));
        return null;
      case T.VHOST_USER_GET_PROTOCOL_FEATURES:
        return M.encodeU64(this.offeredProtocolFeatures());
      case T.VHOST_USER_SET_PROTOCOL_FEATURES:
        this.setProtocolFeatures(M.decodeU64(p));
        return null;
      case T.VHOST_USER_SET_OWNER:
        this.owner = true;
        return null;
      case T.VHOST_USER_RESET_OWNER:
      case T.VHOST_USER_RESET_DEVICE:
        await this.resetDevice();
        return null;
      case T.VHOST_USER_GET_QUEUE_NUM:
        return M.encodeU64(BigInt(this.device.maxQueues()));
      case T.VHOST_USER_GET_MAX_MEM_SLOTS:
        return M.encodeU64(BigInt(T.VHOST_USER_MAX_RAM_SLOTS));
      case T.VHOST_USER_SET_MEM_TABLE:
        await this.setMemTable(msg);
        return null;
      case T.VHOST_USER_ADD_MEM_REG:
        await this.addMemReg(msg);
        return null;
      case T.VHOST_USER_REM_MEM_REG:
        await this.remMemReg(msg);
        return null;
      case T.VHOST_USER_SET_VRING_NUM:
        this.rings.setNum(M.decodeVringState(p));
        return null;
      case T.VHOST_USER_SET_VRING_ADDR:
        await this.rings.setAddr(M.decodeVringAddr(p));
        return null;
      case T.VHOST_USER_SET_VRING_BASE:
        this.rings.setBase(M.decodeVringState(p));
        return null;
      case T.VHOST_USER_GET_VRING_BASE: {
        const s = M.decodeVringState(p);
        return M.encodeVringState(s.index, await this.rings.getBase(s.index));
      }
      case T.VHOST_USER_SET_VRING_KICK:
      case T.VHOST_USER_SET_VRING_CALL:
      case T.VHOST_USER_SET_VRING_ERR:
        await this.setVringFile(msg);
        return null;
      case T.VHOST_USER_SET_VRING_ENABLE:
        await this.rings.setEnable(M.decodeVringState(p));
        return null;
      case T.VHOST_USER_SET_BACKEND_REQ_FD:
        this.setBackendReqFd(msg);
        return null;
      case T.VHOST_USER_GET_CONFIG:
        return this.getConfig(M.decodeConfig(p), p.length);
      case T.VHOST_USER_SET_CONFIG:
        this.setConfig(M.decodeConfig(p));
        return null;
      case T.VHOST_USER_SET_STATUS:
        this.setStatus(M.decodeU64(p));
        return null;
      case T.VHOST_USER_GET_STATUS:
        return M.encodeU64(BigInt(this.status));
      case T.VHOST_USER_GET_INFLIGHT_FD:
        return this.getInflightFd(M.decodeInflight(p));
      case T.VHOST_USER_SET_INFLIGHT_FD:
        await this.setInflightFd(msg, M.decodeInflight(p));
        return null;
      case T.VHOST_USER_SET_LOG_BASE:
      case T.VHOST_USER_SET_LOG_FD:
        throw new VhostUserProtocolError('UNSUPPORTED_REQUEST', `${name}: LOG_SHMFD was not offered (no dirty logging)`);
      default:
        if (T.isKnownRequest(msg.request)) {
          throw new VhostUserProtocolError('UNSUPPORTED_REQUEST', `${name}: not supported by this back-end`);
        }
        throw new VhostUserProtocolError('UNKNOWN_REQUEST', `unknown request id ${msg.request} (${msg.size} byte payload)`);
    }
  }

  private hasProtocolFeature(n: number): boolean {
    return (this.ackedProtocolFeatures & bit(n)) !== 0n;
  }

  private offeredFeatures(): bigint {
    return this.device.deviceFeatures() | bit(T.VHOST_USER_F_PROTOCOL_FEATURES);
  }

  private offeredProtocolFeatures(): bigint {
    return this.device.protocolFeatures() & T.IMPLEMENTED_PROTOCOL_FEATURES;
  }

  private async setFeatures(f: bigint): Promise<void> {
    // QEMU acks VERSION_1 and bit 2 for vhost-user-scsi whether the back-end offered them or not.
    const accepted = this.offeredFeatures() | bit(T.VIRTIO_F_VERSION_1) | bit(T.VHOST_USER_ACCEPTED_UNOFFERED_BIT);
    const extra = f & ~accepted;
    if (extra !== 0n) {
      throw new VhostUserProtocolError('UNSUPPORTED_FEATURES', `SET_FEATURES 0x${f.toString(16)}: bits 0x${extra.toString(16)} were never offered`);
    }
    await deviceCall(this.device.name, 'setFeatures', this.device.setFeatures(f));
    this.ackedFeatures = f;
  }

  private setProtocolFeatures(f: bigint): void {
    const extra = f & ~this.offeredProtocolFeatures();
    if (extra !== 0n) {
      throw new VhostUserProtocolError('UNSUPPORTED_FEATURES', `SET_PROTOCOL_FEATURES 0x${f.toString(16)}: bits 0x${extra.toString(16)} were never offered`);
    }
    this.ackedProtocolFeatures = f;
  }

  private setStatus(v: bigint): void {
    if (v > 0xffn) throw new VhostUserProtocolError('BAD_VALUE', `SET_STATUS 0x${v.toString(16)}: virtio status is one byte`);
    this.status = Number(v);
  }

  /** Removes the first n fds from the message (the rest are closed after handling). */
  private takeFds(msg: M.VhostUserMessage, n: number, what: string): number[] {
    if (msg.fds.length < n) {
      throw new VhostUserProtocolError('MISSING_FD', `${T.requestName(msg.request)}: ${what} needs ${n} file descriptor(s), ${msg.fds.length} arrived`);
    }
    return msg.fds.splice(0, n);
  }

  // ---- inflight tracking (INFLIGHT_SHMFD) ----

  /** A new zeroed region sized for the front-end's queues; its fd goes with the reply. */
  private getInflightFd(d: M.InflightDesc): Uint8Array {
    this.requireProtocolFeature(T.VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD, 'GET_INFLIGHT_FD');
    validateInflightShape(d, this.device.maxQueues());
    const mmapSize = d.numQueues * inflightQueueBytes(d.queueSize);
    this.replyFds.push(memfdCreate(`vhostd-inflight-${this.device.name}`, mmapSize));
    return M.encodeInflight({ mmapSize, mmapOffset: 0, numQueues: d.numQueues, queueSize: d.queueSize });
  }

  private async setInflightFd(msg: M.VhostUserMessage, d: M.InflightDesc): Promise<void> {
    this.requireProtocolFeature(T.VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD, 'SET_INFLIGHT_FD');
    // Checked before the fd is taken: dispatch() closes the fds of a message that failed.
    validateInflightShape(d, this.device.maxQueues());
    if (d.mmapSize < d.numQueues * inflightQueueBytes(d.queueSize)) {
      throw new VhostUserProtocolError('BAD_INFLIGHT', `SET_INFLIGHT_FD: ${d.mmapSize} bytes cannot hold ${d.numQueues} queue(s) of ${d.queueSize}`);
    }
    if (this.rings.running > 0) throw new VhostUserProtocolError('BAD_INFLIGHT', 'SET_INFLIGHT_FD while rings run');
    const [fd] = this.takeFds(msg, 1, 'the inflight region');
    await deviceCall(this.device.name, 'setInflight', this.device.setInflight({ fd, ...d }));
  }

  private requireProtocolFeature(n: number, what: string): void {
    if (!this.hasProtocolFeature(n)) throw new VhostUserProtocolError('UNSUPPORTED_REQUEST', `${what}: protocol feature ${n} was not negotiated`);
  }

  // ---- memory ----

  private async setMemTable(msg: M.VhostUserMessage): Promise<void> {
    const descs = M.decodeMemTable(msg.payload);
    const fds = this.takeFds(msg, descs.length, `${descs.length} region(s)`);
    await this.installTable(descs.map((d, i) => ({ ...d, fd: fds[i] })));
  }

  private async addMemReg(msg: M.VhostUserMessage): Promise<void> {
    const desc = M.decodeMemRegionMsg(msg.payload);
    if (this.memory.regions.length >= T.VHOST_USER_MAX_RAM_SLOTS) {
      throw new VhostUserProtocolError('TOO_MANY_REGIONS', `ADD_MEM_REG: the table already holds ${T.VHOST_USER_MAX_RAM_SLOTS} regions`);
    }
    const [fd] = this.takeFds(msg, 1, 'the region');
    await this.installTable([...this.memory.regions, { ...desc, fd }]);
  }

  private async remMemReg(msg: M.VhostUserMessage): Promise<void> {
    // An fd that comes along is closed unused (the spec allows front-ends to send one).
    const desc = M.decodeMemRegionMsg(msg.payload);
    const i = this.memory.indexOf(desc);
    if (i < 0) {
      throw new VhostUserProtocolError('NO_SUCH_REGION', `REM_MEM_REG: no region with gpa 0x${desc.guestPhysAddr.toString(16)} size 0x${desc.size.toString(16)} uaddr 0x${desc.userAddr.toString(16)}`);
    }
    await this.installTable(this.memory.regions.filter((_, j) => j !== i));
  }

  /**
   * Validates a candidate table, hands the device duplicates of its fds, and installs it. On any
   * failure the table in force stays and the candidate's new fds are closed.
   */
  private async installTable(candidate: TableRegion[]): Promise<void> {
    const current = this.memory.regions;
    try {
      validateTable(candidate);
      const copies = deviceCopy(candidate);
      await deviceCall(this.device.name, 'setMemory', this.device.setMemory(copies));
    } catch (e) {
      closeRegionFdsNotIn(candidate, current);
      throw e;
    }
    closeRegionFdsNotIn(this.memory.replace(candidate), candidate);
  }

  // ---- rings (fds are taken only after the ring index was validated) ----

  private async setVringFile(msg: M.VhostUserMessage): Promise<void> {
    const f = M.decodeVringFile(msg.request, msg.payload);
    this.rings.get(f.index, msg.request);
    const fd = f.noFd ? -1 : this.takeFds(msg, 1, 'the eventfd')[0];
    if (msg.request === T.VHOST_USER_SET_VRING_KICK) await this.rings.setKick(f.index, fd);
    else if (msg.request === T.VHOST_USER_SET_VRING_CALL) await this.rings.setCall(f.index, fd);
    else this.rings.setErr(f.index, fd);
  }

  // ---- reset, back-end channel, config ----

  /**
   * RESET_DEVICE (and the deprecated RESET_OWNER): rings and device state only. Ownership, protocol
   * features, the back-end channel and the memory table stay: QEMU does not send them again.
   */
  private async resetDevice(): Promise<void> {
    await this.rings.resetAll();
    this.status = 0;
    await deviceCall(this.device.name, 'reset', this.device.reset());
  }

  private setBackendReqFd(msg: M.VhostUserMessage): void {
    const [fd] = this.takeFds(msg, 1, 'the back-end socket');
    let channel: BackendChannel;
    try {
      channel = new BackendChannel(fd);
    } catch (e) {
      closeFd(fd);
      throw e;
    }
    this.backend?.close();
    this.backend = channel;
  }

  /** The reply is as long as the request (`length`), as DPDK and libvhost-user answer. */
  private getConfig(c: M.ConfigSpace, length: number): Uint8Array {
    const data = this.device.getConfig(c.offset, c.size);
    if (data === null) throw new VhostUserProtocolError('CONFIG_REFUSED', `GET_CONFIG: device refused offset ${c.offset} size ${c.size}`);
    return M.encodeConfig(c.offset, c.size, c.flags, data, length);
  }

  private setConfig(c: M.ConfigSpace): void {
    if (!this.device.setConfig(c.offset, c.data.slice(), c.flags)) {
      throw new VhostUserProtocolError('CONFIG_REFUSED', `SET_CONFIG: device refused offset ${c.offset} size ${c.size} flags ${c.flags}`);
    }
  }

  // ---- teardown ----

  private async tearDown(reason: string): Promise<void> {
    if (this.loop !== null) await this.loop;
    this.log.info({ reason, owner: this.owner }, 'front-end disconnected');
    await this.rings.stopAll();
    try {
      await this.device.disconnected();
    } catch (e) {
      this.log.error({ err: e }, 'device failed to handle the disconnect');
    }
    this.rings.closeAll();
    this.memory.closeAll();
    this.backend?.close();
    this.backend = null;
    this.reader.discard();
    closeFd(this.fd);
    this.onClosed(reason);
  }
}
