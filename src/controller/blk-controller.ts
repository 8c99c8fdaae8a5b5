// A vhost-user-blk controller: one bdev behind a virtio-blk device.
import type { ReactorHandle } from '../reactor/reactor-handle.ts';
import type { Bdev } from '../bdev/bdev.ts';
import type { BdevRegistry } from '../bdev/bdev-registry.ts';
import type { Logger } from '../log/logger.ts';
import { ControllerError, ENODEV } from './controller-error.ts';
import { configSlice } from './config-slice.ts';
import { BLK_CONFIG_WRITEBACK_OFFSET, blkConfigSpace } from './blk-config-space.ts';
import { MAX_QUEUES } from '../devices/virtio-device.ts';
import { formatCpumask } from '../reactor/cpumask.ts';
import { VhostController, type ConfigCall } from './vhost-controller.ts';
import { RING_FEATURES, STORAGE_PROTOCOL_FEATURES, VIRTIO_F_RING_PACKED_BIT } from './feature-sets.ts';
import * as B from '../devices/virtio-blk/virtio-blk-constants.ts';

const VHOST_USER_BACKEND_CONFIG_CHANGE_MSG = 2;

export interface BlkControllerOptions {
  bdevName: string;
  readOnly: boolean;
  packedRing: boolean;
}

export class BlkController extends VhostController {
  readonly readOnly: boolean;
  readonly packedRing: boolean;
  private readonly bdevName: string;
  private bdev: Bdev | null = null;
  private writeback = false;
  private numBlocks = 0;

  constructor(name: string, socketPath: string, cpus: number[], reactors: ReactorHandle[], bdevs: BdevRegistry, logger: Logger, opts: BlkControllerOptions) {
    super('blk', name, socketPath, cpus, reactors, bdevs, logger);
    this.bdevName = opts.bdevName;
    this.readOnly = opts.readOnly;
    this.packedRing = opts.packedRing;
  }

  protected override async prepare(): Promise<void> {
    const bdev = this.bdevs.get(this.bdevName);
    if (!bdev) throw new ControllerError('BDEV_NOT_FOUND', ENODEV, `bdev '${this.bdevName}' does not exist`);
    this.bdevs.claim(bdev.name, `vhost-blk ${this.name}`);
    this.bdev = bdev;
    this.writeback = bdev.writeCache;
    this.numBlocks = bdev.numBlocks;
    await this.broadcast({
      op: 'blk.bdev',
      deviceId: this.deviceId,
      config: {
        bdev: bdev.channelSpec(),
        readOnly: this.readOnly,
        unmap: bdev.ioTypes.unmap,
        unmapReadsZero: bdev.ioTypes.unmap && bdev.unmapReadsZero,
        serial: bdev.name,
        writeback: this.writeback,
      },
    });
  }

  protected override async detachAll(): Promise<void> {
    if (this.bdev) await this.broadcast({ op: 'blk.bdev', deviceId: this.deviceId, config: null });
  }

  protected override async release(): Promise<void> {
    if (this.bdev) this.bdevs.release(this.bdev.name);
    this.bdev = null;
  }

  /** The bdev changed size: tell the reactor, then the front-end (CONFIG_CHANGE_MSG). */
  override async bdevResized(bdev: Bdev): Promise<void> {
    if (bdev !== this.bdev) return;
    const numBlocks = bdev.numBlocks;
    this.numBlocks = numBlocks;
    await this.broadcast({ op: 'blk.resize', deviceId: this.deviceId, numBlocks });
    const sent = this.sendBackendRequest(VHOST_USER_BACKEND_CONFIG_CHANGE_MSG, new Uint8Array(0));
    this.logger.info({ numBlocks, notified: sent }, 'capacity changed');
  }

  get bdevNameInUse(): string | null {
    return this.bdev?.name ?? null;
  }

  override backendSpecific(): Record<string, unknown> {
    return { block: { readonly: this.readOnly, bdev: this.bdevName, packed_ring: this.packedRing }, queue_cpus: this.queuePlacement() };
  }

  override configCalls(): ConfigCall[] {
    return [
      {
        method: 'vhost_create_blk_controller',
        params: { ctrlr: this.name, dev_name: this.bdevName, readonly: this.readOnly, packed_ring: this.packedRing, cpumask: formatCpumask(this.cpus) },
      },
      ...this.coalescingCall(),
    ];
  }

  override deviceFeatures(): bigint {
    const bdev = this.bdev;
    let f =
      RING_FEATURES |
      (1n << B.VIRTIO_BLK_F_SIZE_MAX) |
      (1n << B.VIRTIO_BLK_F_SEG_MAX) |
      (1n << B.VIRTIO_BLK_F_BLK_SIZE) |
      (1n << B.VIRTIO_BLK_F_TOPOLOGY) |
      (1n << B.VIRTIO_BLK_F_FLUSH) |
      (1n << B.VIRTIO_BLK_F_CONFIG_WCE) |
      (1n << B.VIRTIO_BLK_F_MQ);
    if (this.readOnly) f |= 1n << B.VIRTIO_BLK_F_RO;
    else {
      f |= 1n << B.VIRTIO_BLK_F_WRITE_ZEROES;
      if (bdev?.ioTypes.unmap) f |= 1n << B.VIRTIO_BLK_F_DISCARD;
    }
    if (this.packedRing) f |= VIRTIO_F_RING_PACKED_BIT;
    return f;
  }

  override protocolFeatures(): bigint {
    return STORAGE_PROTOCOL_FEATURES;
  }

  override maxQueues(): number {
    return MAX_QUEUES;
  }

  override getConfig(offset: number, size: number): Uint8Array | null {
    const bdev = this.bdev;
    if (!bdev) return null;
    const physical = (bdev as { physicalBlockSize?: number }).physicalBlockSize ?? bdev.blockSize;
    const space = blkConfigSpace({
      blockSize: bdev.blockSize,
      numBlocks: this.numBlocks,
      physicalBlockExponent: Math.max(0, Math.round(Math.log2(physical / bdev.blockSize))),
      optimalIoBlocks: bdev.optimalIoBoundary,
      writeback: this.writeback,
      numQueues: MAX_QUEUES,
      discard: !this.readOnly && bdev.ioTypes.unmap,
    });
    return configSlice(space, offset, size);
  }

  /** Only the writeback byte is writable (VIRTIO_BLK_F_CONFIG_WCE). */
  override setConfig(offset: number, data: Uint8Array): boolean {
    if (offset !== BLK_CONFIG_WRITEBACK_OFFSET || data.length !== 1 || data[0] > 1) return false;
    this.writeback = data[0] === 1;
    this.broadcast({ op: 'blk.writeback', deviceId: this.deviceId, writeback: this.writeback }).catch((e: unknown) => {
      this.logger.warn({ err: e }, 'writeback change did not reach the reactor');
    });
    return true;
  }
}
