// The rings of one connection and their life cycle: a ring runs (is handed to the device) while
// it is started (SET_VRING_KICK after NUM/ADDR) and enabled; every change that ends that state
// stops it on the device first, and the avail index the device returns is kept for the next start.
import type { Logger } from '../log/logger.ts';
import { closeFd } from '../sys/fd.ts';
import type { VhostUserDevice } from './device.ts';
import type { VringAddr, VringState as VringStateMsg } from './message.ts';
import * as T from './message-types.ts';
import { deviceCall, VhostUserProtocolError } from './protocol-error.ts';
import { VringState } from './vring-state.ts';

const { bit } = T;

export class VringSet {
  private readonly rings: (VringState | undefined)[] = [];
  private readonly device: VhostUserDevice;
  private readonly log: Logger;
  /** The virtio features acked so far (SET_FEATURES). */
  private readonly features: () => bigint;

  constructor(device: VhostUserDevice, log: Logger, features: () => bigint) {
    this.device = device;
    this.log = log;
    this.features = features;
  }

  /** Rings the device is processing now. */
  get running(): number {
    let n = 0;
    for (const r of this.rings) if (r?.running) n++;
    return n;
  }

  /** The ring with this index, validated against what the device accepts. */
  get(index: number, request: number): VringState {
    const max = Math.min(this.device.maxQueues(), T.VHOST_USER_MAX_VRINGS);
    if (!Number.isInteger(index) || index < 0 || index >= max) {
      throw new VhostUserProtocolError('BAD_RING_INDEX', `${T.requestName(request)}: ring ${index} does not exist (the device has ${max})`);
    }
    let r = this.rings[index];
    if (r === undefined) {
      r = new VringState(index);
      this.rings[index] = r;
    }
    return r;
  }

  private get packed(): boolean {
    return (this.features() & bit(T.VIRTIO_F_RING_PACKED)) !== 0n;
  }

  private async start(r: VringState): Promise<void> {
    await deviceCall(this.device.name, `startRing(${r.index})`, this.device.startRing(r.setup(this.features())));
    r.running = true;
  }

  /** Stops a running ring and keeps the avail index the device returns for the next start. */
  private async stop(r: VringState): Promise<void> {
    r.running = false;
    try {
      const base = await this.device.stopRing(r.index);
      if (Number.isInteger(base) && base >= 0 && base <= 0xffffffff) r.base = base;
      else this.log.error({ ring: r.index, base }, 'device returned an invalid avail index from stopRing; keeping the previous one');
    } catch (e) {
      // Nothing else can be done: treat the ring as stopped.
      this.log.error({ ring: r.index, err: e }, 'device failed to stop a ring');
    }
  }

  /** Brings the device in line with the ring's state: start it if runnable, stop it if not. */
  private async update(r: VringState): Promise<void> {
    if (r.runnable && !r.running) await this.start(r);
    else if (!r.runnable && r.running) await this.stop(r);
  }

  setNum(s: VringStateMsg): void {
    const r = this.get(s.index, T.VHOST_USER_SET_VRING_NUM);
    if (r.running) throw new VhostUserProtocolError('RING_BUSY', `SET_VRING_NUM: ring ${s.index} is running`);
    if (s.num < 1 || s.num > 32768 || (!this.packed && (s.num & (s.num - 1)) !== 0)) {
      throw new VhostUserProtocolError('BAD_RING_SIZE', `SET_VRING_NUM: ring ${s.index} size ${s.num} (must be ${this.packed ? '1' : 'a power of 2'} up to 32768)`);
    }
    r.num = s.num;
  }

  setBase(s: VringStateMsg): void {
    const r = this.get(s.index, T.VHOST_USER_SET_VRING_BASE);
    if (r.running) throw new VhostUserProtocolError('RING_BUSY', `SET_VRING_BASE: ring ${s.index} is running`);
    // Split rings: a 16-bit avail index. Packed rings carry wrap counters (and QEMU the used index) above it.
    if (!this.packed && s.num > 0xffff) throw new VhostUserProtocolError('BAD_VALUE', `SET_VRING_BASE: ring ${s.index} base ${s.num} exceeds 16 bits`);
    r.base = s.num;
  }

  async setAddr(a: VringAddr): Promise<void> {
    const r = this.get(a.index, T.VHOST_USER_SET_VRING_ADDR);
    if ((a.flags & ~(1 << T.VHOST_VRING_F_LOG)) !== 0) {
      throw new VhostUserProtocolError('BAD_VALUE', `SET_VRING_ADDR: ring ${a.index} flags 0x${a.flags.toString(16)} (only bit 0, log, is defined)`);
    }
    // QEMU re-sends the addresses of running rings to toggle used-ring logging: restart the ring.
    if (r.running) await this.stop(r);
    r.addr = { ...a };
    await this.update(r);
  }

  /** GET_VRING_BASE: stops the ring (it needs a new KICK to start again) and returns its avail index. */
  async getBase(index: number): Promise<number> {
    const r = this.get(index, T.VHOST_USER_GET_VRING_BASE);
    if (r.running) await this.stop(r);
    r.dropKick();
    return r.base;
  }

  /** SET_VRING_KICK with its fd (-1 = polling), which the ring now owns. */
  async setKick(index: number, fd: number): Promise<void> {
    const r = this.get(index, T.VHOST_USER_SET_VRING_KICK);
    // A new kick fd restarts the ring; the old fd is closed once the device has let go of it.
    if (r.running) await this.stop(r);
    r.dropKick();
    r.kickFd = fd;
    r.started = true;
    if ((this.features() & bit(T.VHOST_USER_F_PROTOCOL_FEATURES)) === 0n) r.enabled = true;
    await this.update(r);
  }

  /** SET_VRING_CALL with its fd (-1 = no interrupt), which the ring now owns. */
  async setCall(index: number, fd: number): Promise<void> {
    const r = this.get(index, T.VHOST_USER_SET_VRING_CALL);
    const old = r.callFd;
    r.callFd = fd;
    if (r.running) {
      try {
        await deviceCall(this.device.name, `setRingCallFd(${r.index})`, this.device.setRingCallFd(r.index, fd));
      } catch (e) {
        // The device may still signal the old fd: stop the ring before closing it.
        await this.stop(r);
        closeFd(old);
        throw e;
      }
    }
    closeFd(old);
  }

  /** SET_VRING_ERR with its fd (-1 = none); kept for the ring, not used by the device yet. */
  setErr(index: number, fd: number): void {
    const r = this.get(index, T.VHOST_USER_SET_VRING_ERR);
    closeFd(r.errFd);
    r.errFd = fd;
  }

  async setEnable(s: VringStateMsg): Promise<void> {
    const r = this.get(s.index, T.VHOST_USER_SET_VRING_ENABLE);
    // The spec says 1 enables; SPDK's virtio-user initiator (v23.05) sends the ring size instead.
    // DPDK's rte_vhost and libvhost-user treat any non-zero value as enable: so does vhostd.
    r.enabled = s.num !== 0;
    await this.update(r);
  }

  /** RESET_DEVICE: stops every ring and returns it to its initial state (see VringState.resetConfig). */
  async resetAll(): Promise<void> {
    for (const r of this.rings) {
      if (r === undefined) continue;
      if (r.running) await this.stop(r);
      r.resetConfig();
    }
  }

  async stopAll(): Promise<void> {
    for (const r of this.rings) if (r?.running) await this.stop(r);
  }

  /** Closes every ring fd (after stopAll). */
  closeAll(): void {
    for (const r of this.rings) r?.closeFds();
  }
}
