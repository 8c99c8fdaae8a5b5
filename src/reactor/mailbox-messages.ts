// Messages between the control plane (main thread) and a reactor worker. Structured-cloneable only.
import type { VringSetup, VhostUserRegion } from '../vhost-user/device.ts';
import type { BdevChannelSpec } from '../bdev/bdev.ts';
import type { ScsiLunInfo } from '../scsi/scsi-lun-info.ts';

export interface ScsiLunConfig {
  lunId: number;
  info: ScsiLunInfo;
  bdev: BdevChannelSpec;
}

export type ReactorCommand =
  | { op: 'device.create'; deviceId: number; kind: 'scsi'; name: string }
  | { op: 'device.destroy'; deviceId: number }
  | { op: 'device.features'; deviceId: number; features: bigint }
  | { op: 'device.memory'; deviceId: number; regions: VhostUserRegion[] }
  | { op: 'device.reset'; deviceId: number }
  | { op: 'device.disconnect'; deviceId: number }
  | { op: 'ring.start'; deviceId: number; setup: VringSetup }
  | { op: 'ring.stop'; deviceId: number; index: number }
  | { op: 'ring.call'; deviceId: number; index: number; fd: number }
  | { op: 'scsi.target'; deviceId: number; target: number; luns: ScsiLunConfig[] | null }
  | { op: 'stats' }
  | { op: 'shutdown' };

export interface ReactorRequest {
  seq: number;
  cmd: ReactorCommand;
}

export type ReactorReply =
  | { seq: number; ok: true; value: number }
  | { seq: number; ok: false; code: string; message: string };

/** Unsolicited reports from a reactor (queue errors and the like), logged by the control plane. */
export interface ReactorEvent {
  event: 'queue-error';
  deviceId: number;
  queue: number;
  code: string;
  message: string;
}
