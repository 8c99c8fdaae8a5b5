// A VhostUserDevice that records every call, for connection tests.
import { closeFd, fdSize } from '../../../src/sys/fd.ts';
import type { InflightRegion, VhostUserDevice, VhostUserRegion, VringSetup } from '../../../src/vhost-user/device.ts';

export type DeviceCall =
  | { op: 'connected' }
  | { op: 'setFeatures'; features: bigint }
  | { op: 'setMemory'; regions: Omit<VhostUserRegion, 'fd'>[]; fileSizes: number[] }
  | { op: 'setInflight'; region: Omit<InflightRegion, 'fd'>; fileSize: number }
  | { op: 'startRing'; setup: VringSetup }
  | { op: 'stopRing'; index: number }
  | { op: 'setRingCallFd'; index: number; fd: number }
  | { op: 'reset' }
  | { op: 'disconnected' };

export class RecordingDevice implements VhostUserDevice {
  readonly name = 'recording';
  readonly calls: DeviceCall[] = [];
  features = (1n << 32n) | (1n << 28n) | (1n << 29n);
  protocol = 0x1ffffn;
  queues = 4;
  config = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
  /** What stopRing(index) returns. */
  stopIndex = new Map<number, number>();
  failStart = false;
  /** Set to delay stopRing (a device draining in-flight requests). */
  stopDelayMs = 0;
  configRefused = false;

  deviceFeatures(): bigint {
    return this.features;
  }
  protocolFeatures(): bigint {
    return this.protocol;
  }
  maxQueues(): number {
    return this.queues;
  }
  getConfig(offset: number, size: number): Uint8Array | null {
    if (this.configRefused) return null;
    const out = new Uint8Array(size);
    out.set(this.config.subarray(offset, offset + size));
    return out;
  }
  setConfig(): boolean {
    return !this.configRefused;
  }
  connected(): void {
    this.calls.push({ op: 'connected' });
  }
  async setFeatures(features: bigint): Promise<void> {
    this.calls.push({ op: 'setFeatures', features });
  }
  async setMemory(regions: VhostUserRegion[]): Promise<void> {
    const fileSizes = regions.map((r) => fdSize(r.fd));
    this.calls.push({ op: 'setMemory', regions: regions.map(({ fd: _fd, ...rest }) => rest), fileSizes });
    for (const r of regions) closeFd(r.fd); // the device owns what it is given
  }
  async setInflight(region: InflightRegion): Promise<void> {
    const { fd, ...rest } = region;
    this.calls.push({ op: 'setInflight', region: rest, fileSize: fdSize(fd) });
    closeFd(fd);
  }
  async startRing(setup: VringSetup): Promise<void> {
    if (this.failStart) throw new Error('ring addresses are not in guest memory');
    this.calls.push({ op: 'startRing', setup: { ...setup } });
  }
  async stopRing(index: number): Promise<number> {
    if (this.stopDelayMs > 0) await new Promise((r) => setTimeout(r, this.stopDelayMs));
    this.calls.push({ op: 'stopRing', index });
    return this.stopIndex.get(index) ?? 0;
  }
  async setRingCallFd(index: number, fd: number): Promise<void> {
    this.calls.push({ op: 'setRingCallFd', index, fd });
  }
  async reset(): Promise<void> {
    this.calls.push({ op: 'reset' });
  }
  async disconnected(): Promise<void> {
    this.calls.push({ op: 'disconnected' });
  }

  ops(): string[] {
    return this.calls.map((c) => (c.op === 'startRing' ? `startRing(${c.setup.index})` : c.op === 'stopRing' ? `stopRing(${c.index})` : c.op));
  }

  clear(): void {
    this.calls.length = 0;
  }
}
