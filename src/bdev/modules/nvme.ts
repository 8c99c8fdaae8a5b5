// A namespace of an attached NVMe/TCP controller as a bdev (`<controller>n<nsid>`, as SPDK names
// them). The channels (nvme-channel.ts) open one I/O queue each on the controller.
import type { Bdev, BdevIoTypes } from '../bdev.ts';
import { BdevError } from '../bdev-error.ts';
import { checkBlockSize } from '../bdev-geometry.ts';
import type { NvmeController, NvmeNamespace } from './nvme-controller.ts';
import { NVME_MODULE, type NvmeChannelSpec } from './nvme-shared.ts';
import { ONCS_DSM, ONCS_WRITE_ZEROES } from './nvme-spec.ts';

export { NVME_MODULE };

/** A UUID from the namespace's NGUID (or EUI-64), so the same namespace keeps its bdev UUID. */
function namespaceUuid(ns: NvmeNamespace, ctrlr: NvmeController): string {
  let hex = /[^0]/.test(ns.data.nguid) ? ns.data.nguid : /[^0]/.test(ns.data.eui64) ? ns.data.eui64.padEnd(32, '0') : null;
  if (hex === null) {
    // Neither identifier: derive one from the subsystem NQN and nsid (stable across attaches).
    const h = Buffer.from(`${ctrlr.options.subnqn}/${ns.nsid}`);
    const b = new Uint8Array(16);
    for (let i = 0; i < h.length; i++) b[i % 16] = (b[i % 16] * 31 + h[i]) & 0xff;
    hex = Buffer.from(b).toString('hex');
  }
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

export class NvmeBdev implements Bdev {
  readonly name: string;
  readonly aliases: string[] = [];
  readonly uuid: string;
  readonly productName = 'NVMe disk';
  readonly moduleName = NVME_MODULE;
  readonly blockSize: number;
  readonly numBlocks: number;
  readonly ioTypes: BdevIoTypes;
  readonly writeCache: boolean;
  readonly unmapReadsZero: boolean;
  readonly optimalIoBoundary = 0;
  claimedBy: string | null = null;
  readonly ctrlr: NvmeController;
  readonly nsid: number;

  constructor(ctrlr: NvmeController, ns: NvmeNamespace) {
    const cdata = ctrlr.cdata;
    if (cdata === null) throw new BdevError('BDEV_INVALID_PARAM', `controller '${ctrlr.name}' is not identified`);
    if (ns.data.metadataBytes !== 0) {
      throw new BdevError('BDEV_INVALID_PARAM', `namespace ${ns.nsid} of '${ctrlr.name}' is formatted with ${ns.data.metadataBytes} bytes of metadata per block (not supported)`);
    }
    checkBlockSize(ns.data.lbaBytes);
    this.ctrlr = ctrlr;
    this.nsid = ns.nsid;
    this.name = `${ctrlr.name}n${ns.nsid}`;
    this.uuid = namespaceUuid(ns, ctrlr);
    this.blockSize = ns.data.lbaBytes;
    this.numBlocks = ns.data.nsze;
    const unmap = (cdata.oncs & ONCS_DSM) !== 0 && cdata.inCapsuleBytes >= 16;
    this.ioTypes = { read: true, write: true, flush: true, unmap, write_zeroes: (cdata.oncs & ONCS_WRITE_ZEROES) !== 0, reset: false };
    this.writeCache = cdata.vwc;
    this.unmapReadsZero = unmap && ns.data.deallocReadsZero;
  }

  channelSpec(): NvmeChannelSpec {
    const c = this.ctrlr;
    const o = c.options;
    const cdata = c.cdata as NonNullable<NvmeController['cdata']>;
    // MDTS is a power of two of the minimum memory page size (CAP.MPSMIN, 4 KiB x 2^n).
    const mpsmin = 4096 * 2 ** Number((c.cap >> 48n) & 0xfn);
    const mqes = Number(c.cap & 0xffffn) + 1;
    return {
      module: NVME_MODULE,
      name: this.name,
      blockSize: this.blockSize,
      numBlocks: this.numBlocks,
      nsid: this.nsid,
      target: o.target,
      subnqn: o.subnqn,
      hostnqn: o.hostnqn,
      hostid: c.hostidBytes,
      headerDigest: o.headerDigest,
      dataDigest: o.dataDigest,
      queueSize: Math.min(o.ioQueueSize, mqes),
      maxTransfer: cdata.mdts === 0 ? 0 : mpsmin * 2 ** cdata.mdts,
      inCapsule: cdata.inCapsuleBytes,
      oncs: cdata.oncs,
      volatileWriteCache: cdata.vwc,
      connectTimeoutMs: o.connectTimeoutMs,
      control: c.control,
    };
  }

  driverSpecific(): Record<string, unknown> {
    const c = this.ctrlr;
    const o = c.options;
    const cd = c.cdata as NonNullable<NvmeController['cdata']>;
    const ns = c.namespaces.find((n) => n.nsid === this.nsid);
    return {
      nvme: [
        {
          trid: { trtype: 'TCP', adrfam: o.adrfam, traddr: o.traddr, trsvcid: o.trsvcid, subnqn: o.subnqn },
          ctrlr_data: {
            cntlid: c.cntlid,
            vendor_id: `0x${cd.vid.toString(16).padStart(4, '0')}`,
            model_number: cd.modelNumber,
            serial_number: cd.serialNumber,
            firmware_revision: cd.firmwareRevision,
            subnqn: cd.subnqn,
            multi_ctrlr: cd.multiController,
          },
          vs: { nvme_version: `${c.vs >>> 16}.${(c.vs >>> 8) & 0xff}${(c.vs & 0xff) !== 0 ? `.${c.vs & 0xff}` : ''}` },
          ns_data: { id: this.nsid, can_share: ns?.data.canShare ?? false },
          ...c.ctrlrInfo(),
        },
      ],
    };
  }

  /** The controller outlives its bdevs until detach. */
  destroy(): void {}
}
