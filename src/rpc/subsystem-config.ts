// The live configuration as SPDK's JSON config: per subsystem, the RPC calls that recreate it.
// save_config / framework_get_config produce it, config-file.ts replays it.
import type { Bdev } from '../bdev/bdev.ts';
import type { BdevRegistry } from '../bdev/bdev-registry.ts';
import { MallocBdev } from '../bdev/modules/malloc.ts';
import { NullBdev } from '../bdev/modules/null.ts';
import { DelayBdev } from '../bdev/modules/delay.ts';
import { AIO_MODULE, UringBdev } from '../bdev/modules/uring.ts';
import type { VhostApi } from './vhost-api.ts';
import { LVOL_MODULE } from '../bdev/modules/lvol-shared.ts';
import { NbdBdev } from '../bdev/modules/nbd.ts';
import { RbdBdev } from '../bdev/modules/rbd.ts';
import type { RbdClusterRegistry } from '../bdev/modules/rbd-cluster.ts';
import type { NvmeControllerRegistry } from '../bdev/modules/nvme-controller.ts';
import { NVME_MODULE } from '../bdev/modules/nvme-shared.ts';
import { nvmeAttachCall } from './nvme-methods.ts';

export interface ConfigCall {
  method: string;
  params?: Record<string, unknown>;
}

export interface SubsystemConfig {
  subsystem: string;
  config: ConfigCall[] | null;
}

export interface VhostdConfig {
  subsystems: SubsystemConfig[];
}

/** Our subsystems in dependency order (the order they are saved and replayed in). */
export const SUBSYSTEMS: readonly { subsystem: string; depends_on: string[] }[] = [
  { subsystem: 'bdev', depends_on: [] },
  { subsystem: 'vhost_scsi', depends_on: ['bdev'] },
  { subsystem: 'vhost_blk', depends_on: ['bdev'] },
];

/** The call that recreates a bdev, with the parameters SPDK's write_config_json writes; null if unknown. */
export function bdevCreateCall(bdev: Bdev): ConfigCall | null {
  if (bdev instanceof MallocBdev) {
    return {
      method: 'bdev_malloc_create',
      params: {
        name: bdev.name,
        num_blocks: bdev.numBlocks,
        block_size: bdev.blockSize,
        physical_block_size: bdev.physicalBlockSize,
        uuid: bdev.uuid,
        optimal_io_boundary: bdev.optimalIoBoundary,
      },
    };
  }
  if (bdev instanceof NullBdev) {
    return {
      method: 'bdev_null_create',
      params: {
        name: bdev.name,
        num_blocks: bdev.numBlocks,
        block_size: bdev.blockSize,
        physical_block_size: bdev.physicalBlockSize,
        md_size: 0,
        dif_type: 0,
        dif_is_head_of_md: false,
        uuid: bdev.uuid,
      },
    };
  }
  if (bdev instanceof UringBdev) {
    if (bdev.moduleName === AIO_MODULE) {
      // As SPDK's bdev_aio_write_json_config: block_size only when it was given; plus the uuid.
      const params: Record<string, unknown> = { name: bdev.name };
      if (bdev.blockSizeOverride) params.block_size = bdev.blockSize;
      Object.assign(params, { filename: bdev.filename, readonly: bdev.readonly, fallocate: bdev.fallocate, uuid: bdev.uuid });
      if (!bdev.mmap) params.mmap = false; // vhostd's own parameter: only when it differs from the default
      return { method: 'bdev_aio_create', params };
    }
    const params: Record<string, unknown> = { name: bdev.name, block_size: bdev.blockSize, filename: bdev.filename, uuid: bdev.uuid };
    if (!bdev.mmap) params.mmap = false;
    return { method: 'bdev_uring_create', params };
  }
  if (bdev instanceof DelayBdev) {
    const l = bdev.latencies;
    return {
      method: 'bdev_delay_create',
      params: {
        base_bdev_name: bdev.base.name,
        name: bdev.name,
        uuid: bdev.uuid,
        avg_read_latency: l.avgReadUs,
        nine_nine_read_latency: l.p99ReadUs,
        avg_write_latency: l.avgWriteUs,
        nine_nine_write_latency: l.p99WriteUs,
      },
    };
  }
  if (bdev instanceof NbdBdev) {
    const params: Record<string, unknown> = { name: bdev.name, ...bdev.address, export_name: bdev.exportName, uuid: bdev.uuid };
    if (bdev.blockSizeGiven) params.block_size = bdev.blockSize;
    // The user's read-only, not the server's: a server that exports read-write again gets writes.
    if (bdev.readOnlyRequested) params.readonly = true;
    const t = bdev.timeouts;
    Object.assign(params, {
      connect_timeout_sec: t.connectMs / 1000,
      reconnect_delay_sec: t.reconnectDelayMs / 1000,
      fast_io_fail_timeout_sec: t.fastIoFailMs / 1000,
      io_timeout_sec: t.ioTimeoutMs / 1000,
    });
    return { method: 'bdev_nbd_client_create', params };
  }
  if (bdev instanceof RbdBdev) {
    const params: Record<string, unknown> = { name: bdev.name, pool_name: bdev.poolName, rbd_name: bdev.rbdName, block_size: bdev.blockSize, uuid: bdev.uuid };
    const c = bdev.cluster;
    if (c.registered) params.cluster_name = c.name;
    else {
      if (c.options.userId !== undefined) params.user_id = c.options.userId;
      if (c.options.configParam) params.config = { ...c.options.configParam };
    }
    return { method: 'bdev_rbd_create', params };
  }
  return null;
}

export class SubsystemConfigBuilder {
  readonly #bdevs: BdevRegistry;
  readonly #vhost: VhostApi | undefined;
  readonly #onSkipped: (bdev: Bdev) => void;
  readonly #rbdClusters: RbdClusterRegistry | undefined;
  readonly #nvmeCtrlrs: NvmeControllerRegistry | undefined;

  constructor(bdevs: BdevRegistry, vhost: VhostApi | undefined, onSkipped: (bdev: Bdev) => void = () => {}, rbdClusters?: RbdClusterRegistry, nvmeCtrlrs?: NvmeControllerRegistry) {
    this.#bdevs = bdevs;
    this.#rbdClusters = rbdClusters;
    this.#nvmeCtrlrs = nvmeCtrlrs;
    this.#vhost = vhost;
    this.#onSkipped = onSkipped;
  }

  has(subsystem: string): boolean {
    return SUBSYSTEMS.some((s) => s.subsystem === subsystem);
  }

  /** framework_get_config's result for one subsystem; undefined for an unknown subsystem. */
  config(subsystem: string): ConfigCall[] | undefined {
    switch (subsystem) {
      case 'bdev':
        return this.#bdevConfig();
      case 'vhost_scsi':
        return this.#vhostConfig().scsi;
      case 'vhost_blk':
        return this.#vhostConfig().blk;
      default:
        return undefined;
    }
  }

  all(): VhostdConfig {
    return { subsystems: SUBSYSTEMS.map((s) => ({ subsystem: s.subsystem, config: this.config(s.subsystem) ?? [] })) };
  }

  #bdevConfig(): ConfigCall[] {
    const calls: ConfigCall[] = [];
    // Clusters first: the RBD bdevs on them name them.
    for (const c of this.#rbdClusters?.list() ?? []) {
      const o = c.options;
      const params: Record<string, unknown> = { name: c.name };
      if (o.userId !== undefined) params.user_id = o.userId;
      if (o.configParam) params.config_param = { ...o.configParam };
      if (o.configFile !== undefined) params.config_file = o.configFile;
      if (o.keyFile !== undefined) params.key_file = o.keyFile;
      if (o.coreMask !== undefined) params.core_mask = o.coreMask;
      calls.push({ method: 'bdev_rbd_register_cluster', params });
    }
    // NVMe controllers attach their namespace bdevs.
    for (const c of this.#nvmeCtrlrs?.list() ?? []) calls.push(nvmeAttachCall(c));
    for (const b of this.#bdevs.list()) {
      // As SPDK: lvols live in their store's metadata and come back by examine of its base bdev.
      if (b.moduleName === LVOL_MODULE || b.moduleName === NVME_MODULE) continue;
      const c = bdevCreateCall(b);
      if (c) calls.push(c);
      else this.#onSkipped(b);
    }
    // Last, as SPDK writes it, so a replay waits for every bdev before the controllers.
    calls.push({ method: 'bdev_wait_for_examine' });
    return calls;
  }

  /** VhostApi.configCalls() is one list: blk controllers' calls go to vhost_blk, the rest to vhost_scsi. */
  #vhostConfig(): { scsi: ConfigCall[]; blk: ConfigCall[] } {
    const scsi: ConfigCall[] = [];
    const blk: ConfigCall[] = [];
    const blkCtrlrs = new Set<string>();
    for (const c of this.#vhost?.configCalls() ?? []) {
      const ctrlr = typeof c.params?.ctrlr === 'string' ? c.params.ctrlr : undefined;
      if (c.method === 'vhost_create_blk_controller' && ctrlr !== undefined) blkCtrlrs.add(ctrlr);
      const isBlk = c.method.startsWith('vhost_blk_') || c.method === 'vhost_create_blk_controller' || (ctrlr !== undefined && blkCtrlrs.has(ctrlr));
      (isBlk ? blk : scsi).push({ method: c.method, params: c.params });
    }
    return { scsi, blk };
  }
}
