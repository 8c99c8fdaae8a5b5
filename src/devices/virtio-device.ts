// A virtio device inside a reactor: memory table, running queues, used-ring flushes and guest
// notifications. The device kind (scsi, blk) plugs in through VirtioDeviceModel.
import { mapGuestMemory, type MappedGuestMemory } from '../virtio/guest-memory-map.ts';
import { SplitVirtqueue } from '../virtio/split-virtqueue.ts';
import { PackedVirtqueue, decodePackedVringBase } from '../virtio/packed-virtqueue.ts';
import type { Virtqueue } from '../virtio/virtqueue.ts';
import { eventfdSignal } from '../sys/eventfd.ts';
import { closeFd } from '../sys/fd.ts';
import type { InflightRegion, VhostUserRegion, VringSetup } from '../vhost-user/device.ts';
import { mapInflightRegion, type MappedInflight } from './inflight-mapping.ts';
import { SplitInflightLog } from '../virtio/split-inflight.ts';
import type { GuestMemory } from '../virtio/guest-memory.ts';
import type { QueueProcessor, VirtioDeviceModel } from './queue-processor.ts';
import { DeviceError } from './device-error.ts';
import { InterruptCoalescer } from './interrupt-coalescer.ts';
import { performance } from 'node:perf_hooks';

import { VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_RING_PACKED } from '../virtio/virtio-constants.ts';

const EVENT_IDX_BIT = 1n << BigInt(VIRTIO_F_EVENT_IDX);
const INDIRECT_BIT = 1n << BigInt(VIRTIO_F_INDIRECT_DESC);
const PACKED_BIT = 1n << BigInt(VIRTIO_F_RING_PACKED);
export const MAX_QUEUES = 64;

export { DeviceError };

export class QueueSlot {
  readonly index: number;
  vq: Virtqueue | null = null;
  processor: QueueProcessor | null = null;
  kickFd = -1;
  callFd = -1;
  /** Used elements pushed since the last flush. */
  dirty = false;
  /** Stop requested; waiting for in-flight requests. */
  stopping = false;
  /** Guest error reported already. */
  reported = false;
  constructor(index: number) {
    this.index = index;
  }
}

export interface DeviceHost {
  watchKick(fd: number): void;
  unwatchKick(fd: number): void;
  reportQueueError(deviceId: number, queue: number, code: string, message: string): void;
}

export class VirtioDevice {
  readonly id: number;
  readonly name: string;
  readonly model: VirtioDeviceModel;
  private readonly host: DeviceHost;
  private mapped: MappedGuestMemory | null = null;
  /** Old tables kept until no request can still reference them. */
  private retired: MappedGuestMemory[] = [];
  readonly slots: QueueSlot[] = [];
  private running: QueueSlot[] = [];
  /** Slots with stopping set: poll() flushes them, and skips the scan of all slots while none is. */
  private stoppingCount = 0;
  private readonly coalescer = new InterruptCoalescer(MAX_QUEUES);
  private features = 0n;
  /** SET_INFLIGHT_FD's region; rings started while it is set record their requests in it. */
  private inflight: MappedInflight | null = null;
  /** Replaced or released regions, unmapped once no ring (whose log views them) is left. */
  private retiredInflight: MappedInflight[] = [];

  constructor(id: number, name: string, model: VirtioDeviceModel, host: DeviceHost) {
    this.id = id;
    this.name = name;
    this.model = model;
    this.host = host;
    for (let i = 0; i < MAX_QUEUES; i++) this.slots.push(new QueueSlot(i));
  }

  setFeatures(features: bigint): void {
    this.features = features;
    this.model.setFeatures(features);
  }

  setMemory(regions: VhostUserRegion[]): void {
    let next: MappedGuestMemory;
    try {
      next = mapGuestMemory(regions);
    } finally {
      // The mapping keeps the memory alive; the fds were handed to us to close.
      for (const r of regions) closeFd(r.fd);
    }
    const prev = this.mapped;
    this.mapped = next;
    for (const slot of this.running) {
      try {
        slot.vq!.rebind(next.memory);
        slot.processor!.attach(slot.vq!);
      } catch (e) {
        this.failQueue(slot, (e as { code?: string }).code ?? 'RING_NOT_MAPPED', (e as Error).message);
      }
    }
    if (prev) this.retired.push(prev);
    this.releaseRetired();
  }

  /** The fd is owned here from now on (closed whatever happens). */
  setInflight(region: InflightRegion): void {
    let next: MappedInflight;
    try {
      if (this.running.length > 0 || this.stoppingCount > 0) throw new DeviceError('RING_RUNNING', 'SET_INFLIGHT_FD while rings run');
      next = mapInflightRegion(region);
    } finally {
      closeFd(region.fd);
    }
    if (this.inflight) this.retiredInflight.push(this.inflight);
    this.inflight = next;
    this.releaseInflight();
  }

  private releaseInflight(): void {
    if (this.retiredInflight.length === 0 || this.running.length > 0 || this.stoppingCount > 0) return;
    for (const m of this.retiredInflight) m.unmap();
    this.retiredInflight = [];
  }

  /** Requests popped and not completed, over all queues (running or stopping). */
  inflightTotal(): number {
    // Index loops here and in arm/disarmNotifications: the reactor calls them around each sleep,
    // code too cold to be optimized, where a for-of allocates an iterator and its results.
    let n = 0;
    const running = this.running;
    for (let i = 0; i < running.length; i++) n += running[i].processor!.inflight();
    if (this.stoppingCount === 0) return n;
    const slots = this.slots;
    for (let i = 0; i < slots.length; i++) if (slots[i].stopping && slots[i].processor) n += slots[i].processor!.inflight();
    return n;
  }

  private releaseRetired(): void {
    if (this.retired.length === 0 || this.inflightTotal() > 0) return;
    for (const m of this.retired) m.unmap();
    this.retired = [];
  }

  startRing(setup: VringSetup): void {
    const slot = this.slots[setup.index];
    if (!slot) throw new DeviceError('BAD_RING_INDEX', `queue ${setup.index} is beyond the device's ${MAX_QUEUES} queues`);
    if (slot.vq) throw new DeviceError('RING_RUNNING', `queue ${setup.index} is already running`);
    const mem = this.mapped?.memory;
    if (!mem) throw new DeviceError('NO_MEMORY_TABLE', `queue ${setup.index} started before any memory table`);
    const processor = this.model.processorFor(setup.index);
    if (!processor) throw new DeviceError('BAD_RING_INDEX', `${this.model.kind} device has no queue ${setup.index}`);
    const vq = this.makeQueue(mem, setup);
    // The kick fd is watched before the slot takes the queue: epoll refuses an fd it cannot poll
    // (EPERM for a regular file or memfd sent as the "kick"), and a start that fails must leave the
    // slot stopped. Registered first, a running slot outlived the failed ENABLE (the connection never
    // stops it), kept its views of guest memory after the disconnect unmapped it, and the next poll
    // took SIGSEGV.
    if (setup.kickFd >= 0) this.host.watchKick(setup.kickFd);
    slot.vq = vq;
    slot.processor = processor;
    slot.kickFd = setup.kickFd;
    slot.callFd = setup.callFd;
    slot.dirty = false;
    slot.stopping = false;
    slot.reported = false;
    processor.attach(vq);
    this.running.push(slot);
    // A back-end that died after publishing used elements may not have signalled them: one
    // interrupt on a resumed ring makes the driver look (spurious ones are harmless).
    if (vq instanceof SplitVirtqueue && vq.resumedFromInflight && slot.callFd >= 0) eventfdSignal(slot.callFd);
  }

  private makeQueue(mem: GuestMemory, setup: VringSetup): Virtqueue {
    const size = setup.size;
    const eventIdx = (setup.features & EVENT_IDX_BIT) !== 0n;
    const indirect = (setup.features & INDIRECT_BIT) !== 0n;
    const notMapped = (): never => {
      throw new DeviceError('RING_NOT_MAPPED', `queue ${setup.index}: ring addresses are outside the memory table`);
    };
    if ((setup.features & PACKED_BIT) !== 0n) {
      // Packed: descriptor ring, driver event area ("avail"), device event area ("used").
      const descGpa = mem.userToGuestPhys(setup.descUserAddr, 16 * size);
      const driverEventGpa = mem.userToGuestPhys(setup.availUserAddr, 4);
      const deviceEventGpa = mem.userToGuestPhys(setup.usedUserAddr, 4);
      if (descGpa < 0 || driverEventGpa < 0 || deviceEventGpa < 0) notMapped();
      const base = decodePackedVringBase(setup.lastAvailIdx);
      return new PackedVirtqueue(mem, { size, descGpa, driverEventGpa, deviceEventGpa, ...base, eventIdx, indirect });
    }
    const descGpa = mem.userToGuestPhys(setup.descUserAddr, 16 * size);
    const availGpa = mem.userToGuestPhys(setup.availUserAddr, 6 + 2 * size);
    const usedGpa = mem.userToGuestPhys(setup.usedUserAddr, 6 + 8 * size);
    if (descGpa < 0 || availGpa < 0 || usedGpa < 0) notMapped();
    const record = this.inflight?.queueRecord(setup.index, size) ?? null;
    const inflight = record === null ? null : new SplitInflightLog(record, size);
    return new SplitVirtqueue(mem, { size, descGpa, availGpa, usedGpa, lastAvailIdx: setup.lastAvailIdx & 0xffff, eventIdx, indirect, inflight });
  }

  /** Begins stopping; returns the avail index once nothing is in flight, else -1 (call finishStop later). */
  stopRing(index: number): number {
    const slot = this.slots[index];
    if (!slot || (!slot.vq && !slot.stopping)) throw new DeviceError('RING_NOT_RUNNING', `queue ${index} is not running`);
    if (!slot.stopping) {
      slot.stopping = true;
      this.stoppingCount++;
      this.running = this.running.filter((s) => s !== slot);
      if (slot.kickFd >= 0) this.host.unwatchKick(slot.kickFd);
    }
    return this.finishStop(index);
  }

  finishStop(index: number): number {
    const slot = this.slots[index];
    const p = slot.processor!;
    if (p.inflight() > 0) return -1;
    this.flushSlot(slot);
    p.detach();
    // Split: the avail index; packed: avail and used positions with their wrap counters.
    const last = slot.vq!.vringBase;
    slot.vq = null;
    slot.processor = null;
    slot.kickFd = -1;
    slot.callFd = -1;
    if (slot.stopping) this.stoppingCount--;
    slot.stopping = false;
    this.releaseRetired();
    this.releaseInflight();
    return last;
  }

  setCallFd(index: number, fd: number): void {
    const slot = this.slots[index];
    if (!slot || !slot.vq) throw new DeviceError('RING_NOT_RUNNING', `queue ${index} is not running`);
    slot.callFd = fd;
    // A completion signalled on the old fd while the front-end switched notifiers is lost; one
    // spurious interrupt on the new fd makes the driver look at the used ring (as libvhost-user does).
    if (fd >= 0) eventfdSignal(fd);
  }

  /** Marks a queue as having used elements to publish (called by processors on completion). */
  markDirty(index: number): void {
    this.slots[index].dirty = true;
    this.coalescer.completed(index);
  }

  /** vhost_controller_set_coalescing: delay_base_us 0 turns coalescing off. */
  setCoalescing(delayBaseUs: number, iopsThreshold: number): void {
    this.coalescer.configure(delayBaseUs, iopsThreshold);
  }

  /** Deferred guest notifications are owed: the reactor must not sleep past them. */
  hasPendingSignals(): boolean {
    return this.coalescer.hasPending();
  }

  private flushSlot(slot: QueueSlot): void {
    if (!slot.dirty || !slot.vq) return;
    slot.dirty = false;
    if (!slot.vq.flushUsed() || slot.callFd < 0) return;
    if (!this.coalescer.enabled || this.coalescer.signalNow(slot.index, performance.now())) eventfdSignal(slot.callFd);
  }

  /** Sends coalesced notifications whose delay has passed. */
  private signalDue(): void {
    const now = performance.now();
    if (!this.coalescer.tick(now)) return;
    const running = this.running;
    for (let i = 0; i < running.length; i++) {
      const slot = running[i];
      if (this.coalescer.due(slot.index, now) && this.coalescer.signalNow(slot.index, now) && slot.callFd >= 0) eventfdSignal(slot.callFd);
    }
  }

  private failQueue(slot: QueueSlot, code: string, message: string): void {
    if (slot.reported) return;
    slot.reported = true;
    this.host.reportQueueError(this.id, slot.index, code, message);
  }

  /** One loop turn: process queues, reap backend completions, publish used rings. */
  poll(): number {
    let work = 0;
    const running = this.running;
    for (let i = 0; i < running.length; i++) {
      const slot = running[i];
      const vq = slot.vq!;
      if (vq.error) {
        if (!slot.reported) this.failQueue(slot, vq.error.code, vq.error.message);
        continue;
      }
      work += slot.processor!.process();
    }
    work += this.model.pollBackends();
    this.model.afterPoll();
    for (let i = 0; i < running.length; i++) this.flushSlot(running[i]);
    if (this.stoppingCount > 0) for (let i = 0; i < this.slots.length; i++) if (this.slots[i].stopping) this.flushSlot(this.slots[i]);
    if (this.coalescer.enabled) this.signalDue();
    if (this.retired.length > 0) this.releaseRetired();
    return work;
  }

  /** Before sleeping: ask the guest to kick again; true when work arrived meanwhile. */
  armNotifications(): boolean {
    let arrived = false;
    const running = this.running;
    for (let i = 0; i < running.length; i++) {
      const slot = running[i];
      if (slot.vq!.error || !slot.processor!.wantsAvail()) continue;
      if (slot.vq!.enableNotifications()) arrived = true;
    }
    return arrived;
  }

  /** The reactor sleeps with nothing in flight (true) or woke (false): see VirtioDeviceModel.setAsleep. */
  setAsleep(asleep: boolean): void {
    this.model.setAsleep(asleep);
  }

  disarmNotifications(): void {
    const running = this.running;
    for (let i = 0; i < running.length; i++) running[i].vq!.disableNotifications();
  }

  runningQueues(): readonly QueueSlot[] {
    return this.running;
  }

  /** Rings are stopped already (the connection stops them first). */
  reset(): void {
    this.model.reset();
    this.features = 0n;
  }

  /** Front-end gone: drop the memory table once nothing references it. */
  disconnect(): void {
    this.model.reset();
    if (this.mapped) this.retired.push(this.mapped);
    this.mapped = null;
    this.releaseRetired();
    if (this.inflight) this.retiredInflight.push(this.inflight);
    this.inflight = null;
    this.releaseInflight();
  }

  hasRetiredMemory(): boolean {
    return this.retired.length > 0;
  }

  close(): void {
    for (const slot of this.running) if (slot.kickFd >= 0) this.host.unwatchKick(slot.kickFd);
    this.running = [];
    this.model.close();
    if (this.mapped) this.retired.push(this.mapped);
    this.mapped = null;
    // Closing a device with requests in flight only happens at shutdown; the mappings go with the process.
    if (this.inflightTotal() === 0) this.releaseRetired();
  }

  get negotiatedFeatures(): bigint {
    return this.features;
  }
}
