// The surface the split and packed fake devices share, so device-model fakes (blk, scsi disks)
// and driver tests run unchanged on either ring layout.
import type { FakeRingDevice, Segment } from './fake-ring-device.ts';
import type { FakePackedDevice } from './fake-packed-device.ts';

/** What both fake devices' chains have in common. */
export interface AnyChain {
  head: number;
  descriptors: readonly { addr: bigint; len: number; flags: number }[];
  indirect: boolean;
  readable: Segment[];
  writable: Segment[];
  out: Uint8Array;
}

export type AnyDevice = FakeRingDevice | FakePackedDevice;
export type AnyHandler = (c: AnyChain, dev: AnyDevice) => number | null;

/** Runs handler over every published chain of either kind of fake device. */
export function serve(dev: AnyDevice, handler: AnyHandler, signal = true): number {
  return (dev.service as (h: AnyHandler, s: boolean) => number).call(dev, handler, signal);
}

export function writeTo(dev: AnyDevice, c: AnyChain, off: number, bytes: Uint8Array): number {
  return (dev.write as (c: AnyChain, o: number, b: Uint8Array) => number).call(dev, c, off, bytes);
}
