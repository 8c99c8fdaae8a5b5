// Messages between the control plane (main thread) and a reactor worker. Structured-cloneable only.
import type { InflightRegion, VringSetup, VhostUserRegion } from '../vhost-user/device.ts';
import type { BdevChannelSpec } from '../bdev/bdev.ts';
import type { ScsiLunInfo } from '../scsi/scsi-lun-info.ts';
import type { GcWindowReport } from './gc-window.ts';

export interface ScsiLunConfig {
  lunId: number;
  info: ScsiLunInfo;
  bdev: BdevChannelSpec;
  /** LunSharedState buffer (createLunSharedState, a range lock row per reactor): the same for the LUN's instances in every reactor of the device. */
  shared: SharedArrayBuffer;
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
  | { op: 'blk.writeback'; deviceId: number; writeback: boolean }
  /** The combined answer of a relayed TMF (see ScsiTmfEvent): the home reactor completes the guest's request. */
  | { op: 'scsi.tmfDone'; deviceId: number; token: number; response: number; failed: boolean };

/** A virtio-scsi TMF to run against one reactor's LUN state; replies (SCSI_TMF_*) once its tasks finished. */
export interface ScsiTmfCommand {
  op: 'scsi.tmf';
  deviceId: number;
  subtype: number;
  target: number;
  lun: number;
  tagLo: number;
  tagHi: number;
}

/**
 * Where a device instance sits among the reactors of its controller. `home`: this instance runs
 * the queues that stay together (virtio-scsi control and event queues) and is the only one that
 * posts virtio-scsi events, so the guest gets each once. `shared`: other reactors hold instances
 * too, so task management must be relayed through the control plane to reach all of them.
 */
export interface DevicePlacement {
  home: boolean;
  shared: boolean;
}

export type ReactorCommand =
  | { op: 'device.create'; deviceId: number; kind: 'scsi' | 'blk'; name: string; placement: DevicePlacement }
  | { op: 'device.destroy'; deviceId: number }
  | { op: 'device.features'; deviceId: number; features: bigint }
  | { op: 'device.memory'; deviceId: number; regions: VhostUserRegion[] }
  | { op: 'device.inflight'; deviceId: number; region: InflightRegion }
  | { op: 'device.reset'; deviceId: number }
  | { op: 'device.coalescing'; deviceId: number; delayBaseUs: number; iopsThreshold: number }
  | { op: 'device.disconnect'; deviceId: number }
  | { op: 'ring.start'; deviceId: number; setup: VringSetup }
  | { op: 'ring.stop'; deviceId: number; index: number }
  | { op: 'ring.call'; deviceId: number; index: number; fd: number }
  | DeviceControl
  | ScsiTmfCommand
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

/** A guest error stopped a virtqueue: logged by the control plane. */
export interface QueueErrorEvent {
  event: 'queue-error';
  deviceId: number;
  queue: number;
  code: string;
  message: string;
}

/**
 * A TMF from the home reactor's control queue of a device spread over several reactors: the
 * controller runs it on all of them (scsi.tmf) and answers with scsi.tmfDone carrying `token`.
 */
export interface ScsiTmfEvent {
  event: 'scsi-tmf';
  deviceId: number;
  token: number;
  subtype: number;
  target: number;
  lun: number;
  tagLo: number;
  tagHi: number;
}

/** Unsolicited reports from a reactor. */
export type ReactorEvent = QueueErrorEvent | ScsiTmfEvent;
