// Messages between the control plane (main thread) and a reactor worker. Structured-cloneable only.
import type { VringSetup, VhostUserRegion } from '../vhost-user/device.ts';
import type { BdevChannelSpec } from '../bdev/bdev.ts';
import type { ScsiLunInfo } from '../scsi/scsi-lun-info.ts';
import type { GcWindowReport } from './gc-window.ts';

export interface ScsiLunConfig {
  lunId: number;
  info: ScsiLunInfo;
  bdev: BdevChannelSpec;
}

/** The bdev behind a virtio-blk device, as a reactor needs it. */
export interface BlkDeviceConfig {
  bdev: BdevChannelSpec;
  readOnly: boolean;
  /** Offer DISCARD (the bdev supports unmap). */
  unmap: boolean;
  /** Unmapped blocks read back as zeroes: WRITE_ZEROES with the unmap flag may unmap. */
  unmapReadsZero: boolean;
  /** 20-byte GET_ID serial (ASCII, zero-padded by the device). */
  serial: string;
  /** Write cache on (flush needed for durability). */
  writeback: boolean;
}

/** Commands for one kind of device, handled by its model. */
export type DeviceControl =
  | { op: 'scsi.target'; deviceId: number; target: number; luns: ScsiLunConfig[] | null }
  | { op: 'scsi.resize'; deviceId: number; target: number; numBlocks: number }
  | { op: 'blk.bdev'; deviceId: number; config: BlkDeviceConfig | null }
  | { op: 'blk.resize'; deviceId: number; numBlocks: number }
  | { op: 'blk.writeback'; deviceId: number; writeback: boolean };

export type ReactorCommand =
  | { op: 'device.create'; deviceId: number; kind: 'scsi' | 'blk'; name: string }
  | { op: 'device.destroy'; deviceId: number }
  | { op: 'device.features'; deviceId: number; features: bigint }
  | { op: 'device.memory'; deviceId: number; regions: VhostUserRegion[] }
  | { op: 'device.reset'; deviceId: number }
  | { op: 'device.coalescing'; deviceId: number; delayBaseUs: number; iopsThreshold: number }
  | { op: 'device.disconnect'; deviceId: number }
  | { op: 'ring.start'; deviceId: number; setup: VringSetup }
  | { op: 'ring.stop'; deviceId: number; index: number }
  | { op: 'ring.call'; deviceId: number; index: number; fd: number }
  | DeviceControl
  | { op: 'stats' }
  /** Starts (or restarts) the reactor's GC window; gc.stop ends it and replies with its report. */
  | { op: 'gc.start' }
  | { op: 'gc.stop' }
  | { op: 'shutdown' };

export interface ReactorRequest {
  seq: number;
  cmd: ReactorCommand;
}

export type ReactorReply =
  | { seq: number; ok: true; value: number; gc?: GcWindowReport }
  | { seq: number; ok: false; code: string; message: string };

/** Unsolicited reports from a reactor (queue errors and the like), logged by the control plane. */
export interface ReactorEvent {
  event: 'queue-error';
  deviceId: number;
  queue: number;
  code: string;
  message: string;
}
