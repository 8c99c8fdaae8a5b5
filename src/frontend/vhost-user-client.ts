// The front-end side of a vhost-user connection (what QEMU's hw/virtio/vhost-user.c does): one
// method per front-end request, NEED_REPLY / REPLY_ACK handling, strict reply validation, and
// sendRaw for hostile tests. Never blocks the event loop (the back-end may share the process).
import { connectUnix, peerPid, socketPair } from '../sys/unix-socket.ts';
import { closeFd, setNonBlocking } from '../sys/fd.ts';
import { SysError } from '../sys/errno.ts';
import { ChannelError, VhostUserChannel, type VhostUserMessage } from './vhost-user-channel.ts';
import * as P from './vhost-user-protocol.ts';
import {
  CONFIG_HEADER_SIZE, INFLIGHT_SIZE, U64_SIZE, VRING_STATE_SIZE,
  decodeConfig, decodeInflight, decodeU64, decodeVringState, encodeConfig, encodeInflight, encodeLogBase,
  encodeMemReg, encodeMemTable, encodeU64, encodeVringAddr, encodeVringState,
  type InflightInfo, type MemRegionDescription, type VringAddr,
} from './vhost-user-payloads.ts';

export type { VhostUserMessage } from './vhost-user-channel.ts';

/** What a back-end request handler answers (void: 0, success). */
export type BackendReply = bigint | number | void;

export type VhostUserClientErrorCode =
  | 'CONNECT_FAILED' | 'DISCONNECTED' | 'TIMEOUT' | 'SEND_FAILED'
  | 'BAD_REPLY_REQUEST' | 'BAD_REPLY_FLAGS' | 'BAD_REPLY_SIZE' | 'BAD_REPLY' | 'UNEXPECTED_FDS' | 'MISSING_FD'
  | 'REQUEST_FAILED' | 'BAD_ARGUMENT';

export class VhostUserClientError extends Error {
  readonly code: VhostUserClientErrorCode;
  /** The request this error is about, 0 when none. */
  readonly request: number;
  constructor(code: VhostUserClientErrorCode, request: number, message: string) {
    super(request ? `${P.requestName(request)}: ${message}` : message);
    this.name = 'VhostUserClientError';
    this.code = code;
    this.request = request;
  }
}

/**
 * When set-type messages carry NEED_REPLY (only once REPLY_ACK is negotiated): 'qemu' as QEMU 10
 * does (SET_MEM_TABLE, ADD/REM_MEM_REG, SET_BACKEND_REQ_FD, SET_CONFIG, SET_VRING_ENABLE, and
 * SET_FEATURES / SET_VRING_ADDR when logging), 'always' on every message without a reply of its own.
 */
export type NeedReplyPolicy = 'qemu' | 'always' | 'never';

export interface VhostUserClientOptions {
  /** A reply not arriving within this many ms fails the call with TIMEOUT (default 5000). */
  replyTimeoutMs?: number;
  needReply?: NeedReplyPolicy;
  /** Keep retrying ENOENT / ECONNREFUSED for this long while the daemon starts (default 0). */
  connectTimeoutMs?: number;
}

/** Per-call override of the NEED_REPLY policy. */
export interface SetOptions {
  needReply?: boolean;
}

export interface RawOptions {
  /** Wait for one reply and return it unvalidated (default false). */
  expectReply?: boolean;
  /** Header size field to send instead of payload.length. */
  sizeField?: number;
}

interface Expectation {
  /** Exact payload size, or -1 for any. */
  size: number;
  maxFds: number;
  raw: boolean;
}

interface Pending {
  request: number;
  expect: Expectation;
  resolve: (m: VhostUserMessage) => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout> | null;
  /** Timed out: the late reply is swallowed so later replies stay matched. */
  abandoned: boolean;
}

const EXPECT_U64: Expectation = { size: U64_SIZE, maxFds: 0, raw: false };
const EXPECT_STATE: Expectation = { size: VRING_STATE_SIZE, maxFds: 0, raw: false };
const EXPECT_INFLIGHT: Expectation = { size: INFLIGHT_SIZE, maxFds: 1, raw: false };
const EXPECT_RAW: Expectation = { size: -1, maxFds: Infinity, raw: true };

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export class VhostUserClient {
  readonly options: Required<Omit<VhostUserClientOptions, 'connectTimeoutMs'>>;
  /** Protocol features last sent with SET_PROTOCOL_FEATURES. */
  protocolFeatures = 0n;
  /** Features last sent with SET_FEATURES. */
  features = 0n;
  /** Messages that arrived when no reply was awaited (a back-end bug); their fds are closed. */
  readonly unsolicited: VhostUserMessage[] = [];
  /** Requests the back-end sent on the BACKEND_REQ channel. */
  readonly backendRequests: VhostUserMessage[] = [];
  /**
   * Answer to back-end requests with NEED_REPLY (default: 0 = success). A promise is awaited before
   * replying, so a handler can talk to the back-end first (QEMU re-reads the config, then replies).
   */
  onBackendRequest: ((msg: VhostUserMessage) => BackendReply | Promise<BackendReply>) | null = null;
  /** Resolves when the connection closes: null if we closed it, else why. */
  readonly closed: Promise<ChannelError | null>;
  private readonly channel: VhostUserChannel;
  private backendChannel: VhostUserChannel | null = null;
  private readonly pending: Pending[] = [];
  private closeReason: ChannelError | null = null;
  private resolveClosed!: (r: ChannelError | null) => void;

  /** Wraps a connected stream socket (takes ownership of fd). */
  constructor(fd: number, options: VhostUserClientOptions = {}) {
    this.options = { replyTimeoutMs: options.replyTimeoutMs ?? 5000, needReply: options.needReply ?? 'qemu' };
    this.closed = new Promise((r) => (this.resolveClosed = r));
    setNonBlocking(fd);
    this.channel = new VhostUserChannel(fd, {
      onMessage: (m) => this.onMessage(m),
      onClose: (reason) => this.onClose(reason),
    });
  }

  /** Pid of the back-end process (SO_PEERCRED), for measuring its CPU. */
  peerPid(): number {
    return peerPid(this.channel.fd);
  }

  static async connect(path: string, options: VhostUserClientOptions = {}): Promise<VhostUserClient> {
    const deadline = Date.now() + (options.connectTimeoutMs ?? 0);
    for (;;) {
      try {
        return new VhostUserClient(connectUnix(path, true), options);
      } catch (e) {
        const retry = e instanceof SysError && (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') && Date.now() < deadline;
        if (!retry) throw new VhostUserClientError('CONNECT_FAILED', 0, `connect to ${path}: ${(e as Error).message}`);
        await delay(20);
      }
    }
  }

  get isClosed(): boolean {
    return this.channel.isClosed;
  }

  hasProtocolFeature(bit: number): boolean {
    return P.hasBit(this.protocolFeatures, bit);
  }

  close(): void {
    this.backendChannel?.close();
    this.backendChannel = null;
    this.channel.close();
  }

  // ---- requests -------------------------------------------------------------------------------

  async getFeatures(): Promise<bigint> {
    return decodeU64((await this.get(P.VHOST_USER_GET_FEATURES, new Uint8Array(0), EXPECT_U64)).payload);
  }

  async setFeatures(features: bigint, opts?: SetOptions): Promise<void> {
    await this.set(P.VHOST_USER_SET_FEATURES, encodeU64(features), [], opts, P.hasBit(features, P.VHOST_F_LOG_ALL));
    this.features = features;
  }

  async getProtocolFeatures(): Promise<bigint> {
    return decodeU64((await this.get(P.VHOST_USER_GET_PROTOCOL_FEATURES, new Uint8Array(0), EXPECT_U64)).payload);
  }

  /** Never carries NEED_REPLY by default: REPLY_ACK is not in force until this message is processed. */
  async setProtocolFeatures(features: bigint, opts?: SetOptions): Promise<void> {
    await this.set(P.VHOST_USER_SET_PROTOCOL_FEATURES, encodeU64(features), [], opts ?? { needReply: false }, false);
    this.protocolFeatures = features;
  }

  setOwner(opts?: SetOptions): Promise<void> {
    return this.set(P.VHOST_USER_SET_OWNER, new Uint8Array(0), [], opts, false);
  }

  resetOwner(opts?: SetOptions): Promise<void> {
    return this.set(P.VHOST_USER_RESET_OWNER, new Uint8Array(0), [], opts, false);
  }

  /** One fd per region, in order. */
  async setMemTable(regions: readonly MemRegionDescription[], opts?: SetOptions): Promise<void> {
    if (regions.length > P.VHOST_MEMORY_BASELINE_NREGIONS) {
      throw new VhostUserClientError('BAD_ARGUMENT', P.VHOST_USER_SET_MEM_TABLE, `${regions.length} regions (max ${P.VHOST_MEMORY_BASELINE_NREGIONS}); use sendRaw to send more`);
    }
    return this.set(P.VHOST_USER_SET_MEM_TABLE, encodeMemTable(regions), regions.map((r) => r.fd), opts, true);
  }

  addMemReg(region: MemRegionDescription, opts?: SetOptions): Promise<void> {
    return this.set(P.VHOST_USER_ADD_MEM_REG, encodeMemReg(region), [region.fd], opts, true);
  }

  /** QEMU sends no fd with REM_MEM_REG. */
  remMemReg(region: MemRegionDescription, opts?: SetOptions): Promise<void> {
    return this.set(P.VHOST_USER_REM_MEM_REG, encodeMemReg(region), [], opts, true);
  }

  /** Returns the back-end's u64 reply (0 = success). */
  async setLogBase(size: bigint | number, offset: bigint | number, fd: number): Promise<bigint> {
    const m = await this.get(P.VHOST_USER_SET_LOG_BASE, encodeLogBase(size, offset), EXPECT_U64, [fd]);
    return decodeU64(m.payload);
  }

  setLogFd(fd: number, opts?: SetOptions): Promise<void> {
    return this.set(P.VHOST_USER_SET_LOG_FD, new Uint8Array(0), [fd], opts, false);
  }

  setVringNum(index: number, num: number, opts?: SetOptions): Promise<void> {
    return this.set(P.VHOST_USER_SET_VRING_NUM, encodeVringState(index, num), [], opts, false);
  }

  setVringAddr(addr: VringAddr, opts?: SetOptions): Promise<void> {
    return this.set(P.VHOST_USER_SET_VRING_ADDR, encodeVringAddr(addr), [], opts, (addr.flags & (1 << P.VHOST_VRING_F_LOG)) !== 0);
  }

  setVringBase(index: number, num: number, opts?: SetOptions): Promise<void> {
    return this.set(P.VHOST_USER_SET_VRING_BASE, encodeVringState(index, num), [], opts, false);
  }

  /** Stops the ring; returns the back-end's next avail index. */
  async getVringBase(index: number): Promise<number> {
    const m = await this.get(P.VHOST_USER_GET_VRING_BASE, encodeVringState(index, 0), EXPECT_STATE);
    const s = decodeVringState(m.payload);
    if (s.index !== index) throw new VhostUserClientError('BAD_REPLY', m.request, `reply names ring ${s.index}, asked for ${index}`);
    return s.num;
  }

  /** fd < 0 sends the no-fd bit (polling mode). */
  setVringKick(index: number, fd: number, opts?: SetOptions): Promise<void> {
    return this.setVringFile(P.VHOST_USER_SET_VRING_KICK, index, fd, opts);
  }

  /** fd < 0 sends the no-fd bit (no interrupt for this queue). */
  setVringCall(index: number, fd: number, opts?: SetOptions): Promise<void> {
    return this.setVringFile(P.VHOST_USER_SET_VRING_CALL, index, fd, opts);
  }

  setVringErr(index: number, fd: number, opts?: SetOptions): Promise<void> {
    return this.setVringFile(P.VHOST_USER_SET_VRING_ERR, index, fd, opts);
  }

  setVringEnable(index: number, enable: boolean, opts?: SetOptions): Promise<void> {
    return this.set(P.VHOST_USER_SET_VRING_ENABLE, encodeVringState(index, enable ? 1 : 0), [], opts, true);
  }

  async getQueueNum(): Promise<number> {
    return Number(decodeU64((await this.get(P.VHOST_USER_GET_QUEUE_NUM, new Uint8Array(0), EXPECT_U64)).payload));
  }

  async getMaxMemSlots(): Promise<number> {
    return Number(decodeU64((await this.get(P.VHOST_USER_GET_MAX_MEM_SLOTS, new Uint8Array(0), EXPECT_U64)).payload));
  }

  /** The reply must be exactly 12 + size bytes; a 0-size reply is the back-end refusing. */
  async getConfig(offset: number, size: number, flags = 0): Promise<Uint8Array> {
    const expect: Expectation = { size: -1, maxFds: 0, raw: false };
    const m = await this.get(P.VHOST_USER_GET_CONFIG, encodeConfig(offset, size, flags), expect);
    if (m.payload.length === 0) throw new VhostUserClientError('REQUEST_FAILED', m.request, 'back-end refused (empty reply)');
    if (m.payload.length !== CONFIG_HEADER_SIZE + size) {
      throw new VhostUserClientError('BAD_REPLY_SIZE', m.request, `reply payload is ${m.payload.length} bytes, expected ${CONFIG_HEADER_SIZE + size}`);
    }
    const c = decodeConfig(m.payload);
    if (c.offset !== offset || c.size !== size) {
      throw new VhostUserClientError('BAD_REPLY', m.request, `reply describes offset ${c.offset} size ${c.size}, asked for offset ${offset} size ${size}`);
    }
    return c.data;
  }

  setConfig(offset: number, data: Uint8Array, flags = 0, opts?: SetOptions): Promise<void> {
    return this.set(P.VHOST_USER_SET_CONFIG, encodeConfig(offset, data.length, flags, data), [], opts, true);
  }

  /** The back-end's fd is owned by the caller (-1 when it declined with mmapSize 0 and no fd). */
  async getInflightFd(numQueues: number, queueSize: number): Promise<InflightInfo & { fd: number }> {
    const req = encodeInflight({ mmapSize: 0n, mmapOffset: 0n, numQueues, queueSize });
    const m = await this.get(P.VHOST_USER_GET_INFLIGHT_FD, req, EXPECT_INFLIGHT);
    const info = decodeInflight(m.payload);
    if (info.mmapSize !== 0n && m.fds.length === 0) throw new VhostUserClientError('MISSING_FD', m.request, `mmap_size ${info.mmapSize} but no fd`);
    return { ...info, fd: m.fds.length > 0 ? m.fds[0] : -1 };
  }

  setInflightFd(info: InflightInfo, fd: number, opts?: SetOptions): Promise<void> {
    return this.set(P.VHOST_USER_SET_INFLIGHT_FD, encodeInflight(info), fd >= 0 ? [fd] : [], opts, false);
  }

  setBackendReqFd(fd: number, opts?: SetOptions): Promise<void> {
    return this.set(P.VHOST_USER_SET_BACKEND_REQ_FD, new Uint8Array(0), [fd], opts, true);
  }

  /** Creates the back-end request socket pair, sends one end (SET_BACKEND_REQ_FD) and serves the other. */
  async openBackendChannel(opts?: SetOptions): Promise<void> {
    const [mine, theirs] = socketPair();
    setNonBlocking(mine);
    this.backendChannel?.close();
    const ch = new VhostUserChannel(mine, {
      onMessage: (m) => this.onBackendMessage(ch, m),
      onClose: () => {},
    });
    this.backendChannel = ch;
    try {
      await this.setBackendReqFd(theirs, opts);
    } finally {
      closeFd(theirs);
    }
  }

  resetDevice(opts?: SetOptions): Promise<void> {
    return this.set(P.VHOST_USER_RESET_DEVICE, new Uint8Array(0), [], opts, false);
  }

  setStatus(status: number, opts?: SetOptions): Promise<void> {
    return this.set(P.VHOST_USER_SET_STATUS, encodeU64(status), [], opts, false);
  }

  async getStatus(): Promise<number> {
    return Number(decodeU64((await this.get(P.VHOST_USER_GET_STATUS, new Uint8Array(0), EXPECT_U64)).payload));
  }

  /**
   * Sends any header and payload (hostile tests). With expectReply, resolves with the next message
   * as received (no validation; its fds are the caller's); otherwise resolves null once sent.
   */
  async sendRaw(request: number, flags: number, payload: Uint8Array, fds: readonly number[] = [], opts: RawOptions = {}): Promise<VhostUserMessage | null> {
    return this.transact(request, flags, payload, fds, opts.expectReply ? EXPECT_RAW : null, opts.sizeField);
  }

  /** Sends raw bytes on the stream (partial headers, garbage) with fds on the first byte. */
  sendRawBytes(bytes: Uint8Array, fds: readonly number[] = []): void {
    this.channel.sendBytes(bytes, fds);
  }

  // ---- plumbing -------------------------------------------------------------------------------

  private async setVringFile(request: number, index: number, fd: number, opts?: SetOptions): Promise<void> {
    if (!Number.isInteger(index) || index < 0 || index > P.VHOST_USER_VRING_IDX_MASK) {
      throw new VhostUserClientError('BAD_ARGUMENT', request, `ring index ${index} does not fit in 8 bits; use sendRaw`);
    }
    const v = fd < 0 ? index | P.VHOST_USER_VRING_NOFD_MASK : index;
    return this.set(request, encodeU64(v), fd < 0 ? [] : [fd], opts, false);
  }

  private wantsReply(opts: SetOptions | undefined, qemuWould: boolean): boolean {
    if (opts?.needReply !== undefined) return opts.needReply;
    if (!this.hasProtocolFeature(P.VHOST_USER_PROTOCOL_F_REPLY_ACK)) return false;
    const policy = this.options.needReply;
    return policy === 'always' || (policy === 'qemu' && qemuWould);
  }

  private async set(request: number, payload: Uint8Array, fds: readonly number[], opts: SetOptions | undefined, qemuWould: boolean): Promise<void> {
    const need = this.wantsReply(opts, qemuWould);
    const flags = P.VHOST_USER_VERSION | (need ? P.VHOST_USER_NEED_REPLY_MASK : 0);
    const reply = await this.transact(request, flags, payload, fds, need ? EXPECT_U64 : null);
    if (reply) {
      const v = decodeU64(reply.payload);
      if (v !== 0n) throw new VhostUserClientError('REQUEST_FAILED', request, `back-end replied ${v} (failure)`);
    }
  }

  private async get(request: number, payload: Uint8Array, expect: Expectation, fds: readonly number[] = []): Promise<VhostUserMessage> {
    const m = await this.transact(request, P.VHOST_USER_VERSION, payload, fds, expect);
    return m as VhostUserMessage;
  }

  private transact(request: number, flags: number, payload: Uint8Array, fds: readonly number[], expect: Expectation | null, sizeField?: number): Promise<VhostUserMessage | null> {
    if (this.closeReason || this.channel.isClosed) {
      return Promise.reject(new VhostUserClientError('DISCONNECTED', request, this.closeReason?.message ?? 'connection closed'));
    }
    if (expect === null) {
      try {
        this.channel.send(request, flags, payload, fds, sizeField);
      } catch (e) {
        return Promise.reject(new VhostUserClientError('SEND_FAILED', request, (e as Error).message));
      }
      return Promise.resolve(null);
    }
    return new Promise<VhostUserMessage>((resolve, reject) => {
      const p: Pending = { request, expect, resolve, reject, timer: null, abandoned: false };
      this.pending.push(p);
      try {
        this.channel.send(request, flags, payload, fds, sizeField);
      } catch (e) {
        this.pending.splice(this.pending.indexOf(p), 1);
        reject(new VhostUserClientError('SEND_FAILED', request, (e as Error).message));
        return;
      }
      p.timer = setTimeout(() => {
        p.abandoned = true;
        p.timer = null;
        reject(new VhostUserClientError('TIMEOUT', request, `no reply within ${this.options.replyTimeoutMs} ms`));
      }, this.options.replyTimeoutMs);
    });
  }

  private onMessage(m: VhostUserMessage): void {
    const p = this.pending.shift();
    if (!p) {
      for (const f of m.fds) closeFd(f);
      this.unsolicited.push(m);
      return;
    }
    if (p.timer) clearTimeout(p.timer);
    if (p.abandoned) {
      for (const f of m.fds) closeFd(f);
      return;
    }
    const err = p.expect.raw ? null : this.validate(p, m);
    if (err) {
      for (const f of m.fds) closeFd(f);
      p.reject(err);
    } else {
      p.resolve(m);
    }
  }

  private validate(p: Pending, m: VhostUserMessage): VhostUserClientError | null {
    if (m.request !== p.request) return new VhostUserClientError('BAD_REPLY_REQUEST', p.request, `reply carries request ${P.requestName(m.request)}`);
    if (m.flags !== P.VHOST_USER_REPLY_FLAGS) return new VhostUserClientError('BAD_REPLY_FLAGS', p.request, `reply flags 0x${m.flags.toString(16)}, must be exactly 0x5`);
    if (p.expect.size >= 0 && m.payload.length !== p.expect.size) {
      return new VhostUserClientError('BAD_REPLY_SIZE', p.request, `reply payload is ${m.payload.length} bytes, expected ${p.expect.size}`);
    }
    if (m.fds.length > p.expect.maxFds) return new VhostUserClientError('UNEXPECTED_FDS', p.request, `reply carries ${m.fds.length} fds, expected at most ${p.expect.maxFds}`);
    return null;
  }

  private onClose(reason: ChannelError | null): void {
    this.closeReason = reason ?? new ChannelError('DISCONNECTED', 'connection closed by the front-end');
    for (const p of this.pending.splice(0)) {
      if (p.timer) clearTimeout(p.timer);
      if (!p.abandoned) p.reject(new VhostUserClientError('DISCONNECTED', p.request, this.closeReason.message));
    }
    this.backendChannel?.close();
    this.backendChannel = null;
    this.resolveClosed(reason);
  }

  private onBackendMessage(ch: VhostUserChannel, m: VhostUserMessage): void {
    for (const f of m.fds) closeFd(f);
    this.backendRequests.push(m);
    const r = this.onBackendRequest ? this.onBackendRequest(m) : 0;
    if (r instanceof Promise) {
      // A failing handler answers failure (1), like QEMU's !!ret.
      r.then((v) => this.replyBackend(ch, m, v), () => this.replyBackend(ch, m, 1));
    } else {
      this.replyBackend(ch, m, r);
    }
  }

  private replyBackend(ch: VhostUserChannel, m: VhostUserMessage, r: BackendReply): void {
    if ((m.flags & P.VHOST_USER_NEED_REPLY_MASK) === 0 || ch.isClosed) return;
    try {
      ch.send(m.request, P.VHOST_USER_REPLY_FLAGS, encodeU64(r ?? 0));
    } catch {
      // The back-end went away; its channel closes on its own.
    }
  }
}
