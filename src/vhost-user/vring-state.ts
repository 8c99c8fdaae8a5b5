// What the connection knows about one ring: its configuration from SET_VRING_*, its fds, and
// whether it is started (kick set), enabled (SET_VRING_ENABLE) and running (handed to the device).
import { closeFd } from '../sys/fd.ts';
import type { VringSetup } from './device.ts';
import type { VringAddr } from './message.ts';

export class VringState {
  readonly index: number;
  /** SET_VRING_NUM; 0 = not set. */
  num = 0;
  /** SET_VRING_ADDR; null = not set. */
  addr: VringAddr | null = null;
  /** Next avail index to process: SET_VRING_BASE, or what the device returned when it stopped. */
  base = 0;
  /** SET_VRING_KICK received (with an fd, or the no-fd flag for polling). */
  started = false;
  kickFd = -1;
  callFd = -1;
  errFd = -1;
  enabled = false;
  /** The device has this ring (startRing resolved, stopRing not yet called). */
  running = false;

  constructor(index: number) {
    this.index = index;
  }

  /** Started, enabled and fully configured: the device should be processing it. */
  get runnable(): boolean {
    return this.started && this.enabled && this.num !== 0 && this.addr !== null;
  }

  setup(features: bigint): VringSetup {
    const a = this.addr;
    if (a === null) throw new Error(`ring ${this.index}: setup() without SET_VRING_ADDR`);
    return {
      index: this.index,
      size: this.num,
      descUserAddr: a.descUserAddr,
      availUserAddr: a.availUserAddr,
      usedUserAddr: a.usedUserAddr,
      logGuestAddr: a.logGuestAddr,
      addrFlags: a.flags,
      lastAvailIdx: this.base,
      kickFd: this.kickFd,
      callFd: this.callFd,
      features,
    };
  }

  /** Forgets the kick (the ring is stopped: the front-end sends a new KICK to start it again). */
  dropKick(): void {
    closeFd(this.kickFd);
    this.kickFd = -1;
    this.started = false;
  }

  /**
   * RESET_DEVICE: back to the initial stopped, disabled, unconfigured state. The call and err fds
   * stay: QEMU does not always send them again before the next start, and a stale call fd only
   * costs a spurious interrupt.
   */
  resetConfig(): void {
    this.dropKick();
    this.num = 0;
    this.addr = null;
    this.base = 0;
    this.enabled = false;
  }

  closeFds(): void {
    this.dropKick();
    closeFd(this.callFd);
    closeFd(this.errFd);
    this.callFd = -1;
    this.errFd = -1;
  }
}
