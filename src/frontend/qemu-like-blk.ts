// QEMU's vhost-user-blk, as a front-end: the connect sequence ends with GET_CONFIG (57 bytes),
// the start adds SET_STATUS(ACKNOWLEDGE | DRIVER | DRIVER_OK) after the rings are enabled, stop
// ends with SET_STATUS(0), and every queue is a request queue. A CONFIG_CHANGE_MSG from the
// back-end makes the session re-read the config (QEMU 10), which `config` then reflects.
import * as P from './vhost-user-protocol.ts';
import { FRONTEND_RING_FEATURES, QemuLikeSession, type QemuLikeOptions } from './qemu-like-session.ts';
import type { DriverQueue } from './driver-queue.ts';
import { VirtioBlkDriver, type VirtioBlkDriverOptions } from './virtio-blk-driver.ts';
import { QEMU_BLK_CONFIG_SIZE, parseBlkConfig, type BlkConfig } from './virtio-blk-config.ts';
import * as B from './virtio-blk-wire.ts';

/** virtio-blk features QEMU passes through from a vhost-user back-end (its user_feature_bits) that Linux's driver takes. */
export const FRONTEND_BLK_FEATURES = [
  B.VIRTIO_BLK_F_SIZE_MAX, B.VIRTIO_BLK_F_SEG_MAX, B.VIRTIO_BLK_F_GEOMETRY, B.VIRTIO_BLK_F_RO, B.VIRTIO_BLK_F_BLK_SIZE,
  B.VIRTIO_BLK_F_FLUSH, B.VIRTIO_BLK_F_TOPOLOGY, B.VIRTIO_BLK_F_CONFIG_WCE, B.VIRTIO_BLK_F_MQ,
  B.VIRTIO_BLK_F_DISCARD, B.VIRTIO_BLK_F_WRITE_ZEROES,
].reduce((m, b) => m | P.bit(b), 0n) | FRONTEND_RING_FEATURES;

export interface QemuBlkOptions extends Omit<QemuLikeOptions, 'queueSizes' | 'configSize' | 'driverOkStatus'> {
  /** QEMU's num-queues (default 1). */
  numQueues?: number;
  /** QEMU's queue-size (default 128). */
  queueSize?: number;
  /** GET_CONFIG size (default 57; 36 is what a front-end without discard/write-zeroes asks). */
  configSize?: number;
  /** Driver options (layouts, slots, completion mode). */
  driver?: Omit<VirtioBlkDriverOptions, 'arena' | 'requestQueues'>;
}

export class QemuBlkConnection {
  readonly session: QemuLikeSession<DriverQueue>;
  readonly driver: VirtioBlkDriver;
  private parsed: BlkConfig | null = null;
  private parsedGeneration = -1;

  constructor(session: QemuLikeSession<DriverQueue>, driver: VirtioBlkDriver) {
    this.session = session;
    this.driver = driver;
  }

  /** The config space as last read (at connect, or after the latest CONFIG_CHANGE_MSG). */
  get config(): BlkConfig {
    if (this.parsedGeneration !== this.session.configGeneration || !this.parsed) {
      this.parsed = parseBlkConfig(this.session.config ?? new Uint8Array(0));
      this.parsedGeneration = this.session.configGeneration;
    }
    return this.parsed;
  }

  /** Resolves with the re-read config after the next CONFIG_CHANGE_MSG (a resize, say). */
  async waitForConfigChange(timeoutMs = 5000): Promise<BlkConfig> {
    await this.session.waitForConfigChange(timeoutMs);
    return this.config;
  }

  /** QEMU's stop (ENABLE(0), GET_VRING_BASE, SET_STATUS(0)); the driver stays usable after a new start(). */
  stop(): Promise<number[]> {
    return this.session.stop();
  }

  start(): Promise<void> {
    return this.session.start();
  }

  close(): void {
    this.driver.close();
    this.session.close();
  }
}

/** Connects and starts like QEMU's vhost-user-blk, then starts a VirtioBlkDriver on every queue. */
export async function connectLikeQemuBlk(opts: QemuBlkOptions): Promise<QemuBlkConnection> {
  const { numQueues = 1, queueSize = 128, configSize = QEMU_BLK_CONFIG_SIZE, driver: driverOpts, ...rest } = opts;
  const session = await QemuLikeSession.connect({
    ...rest,
    wantFeatures: rest.wantFeatures ?? FRONTEND_BLK_FEATURES,
    queueSizes: Array.from({ length: numQueues }, () => queueSize),
    configSize,
    driverOkStatus: true,
  });
  let driver: VirtioBlkDriver | null = null;
  try {
    await session.start();
    driver = VirtioBlkDriver.fromSession(session, driverOpts);
    const conn = new QemuBlkConnection(session, driver);
    // Parse now so a back-end with a short config fails here, with BAD_CONFIG.
    void conn.config;
    driver.start();
    return conn;
  } catch (e) {
    driver?.close();
    session.close();
    throw e;
  }
}
