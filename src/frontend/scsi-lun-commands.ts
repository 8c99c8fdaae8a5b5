// Convenience SCSI commands against one LUN through a VirtioScsiDriver's promise API.
import type { VirtioScsiDriver } from './virtio-scsi-driver.ts';
import type { ScsiAddress, ScsiCommandResult } from './scsi-request-slot.ts';
import * as C from './scsi-cdb.ts';
import { VirtioScsiError } from './virtio-scsi-error.ts';

export class ScsiLunCommands {
  readonly driver: VirtioScsiDriver;
  readonly at: ScsiAddress;
  /** Request queue to use (index into the driver's request queues). */
  qi = 0;
  private readonly scratch = new Uint8Array(32);

  constructor(driver: VirtioScsiDriver, at: ScsiAddress) {
    this.driver = driver;
    this.at = at;
  }

  private cdb(len: number): Uint8Array {
    return this.scratch.slice(0, len);
  }

  command(cdb: Uint8Array, dataOut: Uint8Array | null, dataInLen: number): Promise<ScsiCommandResult> {
    return this.driver.command(cdb, dataOut, dataInLen, this.at, { qi: this.qi });
  }

  testUnitReady(): Promise<ScsiCommandResult> {
    return this.command(this.cdb(C.cdbTestUnitReady(this.scratch)), null, 0);
  }

  requestSense(allocLen = 252, desc = false): Promise<ScsiCommandResult> {
    return this.command(this.cdb(C.cdbRequestSense(this.scratch, allocLen, desc)), null, allocLen);
  }

  inquiry(evpd = false, page = 0, allocLen = 255): Promise<ScsiCommandResult> {
    return this.command(this.cdb(C.cdbInquiry(this.scratch, evpd, page, allocLen)), null, allocLen);
  }

  readCapacity16(allocLen = 32): Promise<ScsiCommandResult> {
    return this.command(this.cdb(C.cdbReadCapacity16(this.scratch, allocLen)), null, allocLen);
  }

  read10(lba: number, blocks: number, blockSize = 512, fua = false): Promise<ScsiCommandResult> {
    return this.command(this.cdb(C.cdbRw10(this.scratch, C.READ_10, lba, blocks, fua)), null, blocks * blockSize);
  }

  read16(lba: number, blocks: number, blockSize = 512, fua = false): Promise<ScsiCommandResult> {
    return this.command(this.cdb(C.cdbRw16(this.scratch, C.READ_16, lba, blocks, fua)), null, blocks * blockSize);
  }

  /** data.length must be a multiple of blockSize. */
  write10(lba: number, data: Uint8Array, blockSize = 512, fua = false): Promise<ScsiCommandResult> {
    return this.command(this.cdb(C.cdbRw10(this.scratch, C.WRITE_10, lba, this.blocksOf(data, blockSize), fua)), data, 0);
  }

  write16(lba: number, data: Uint8Array, blockSize = 512, fua = false): Promise<ScsiCommandResult> {
    return this.command(this.cdb(C.cdbRw16(this.scratch, C.WRITE_16, lba, this.blocksOf(data, blockSize), fua)), data, 0);
  }

  synchronizeCache(lba = 0, blocks = 0): Promise<ScsiCommandResult> {
    return this.command(this.cdb(C.cdbSynchronizeCache10(this.scratch, lba, blocks)), null, 0);
  }

  unmap(ranges: readonly C.LbaRange[]): Promise<ScsiCommandResult> {
    const list = new Uint8Array(C.UNMAP_HEADER_SIZE + C.UNMAP_DESCRIPTOR_SIZE * ranges.length);
    const len = C.unmapParameterList(list, ranges);
    return this.command(this.cdb(C.cdbUnmap(this.scratch, len)), list, 0);
  }

  reportLuns(selectReport = 0, allocLen = 1024): Promise<ScsiCommandResult> {
    return this.command(this.cdb(C.cdbReportLuns(this.scratch, selectReport, allocLen)), null, allocLen);
  }

  modeSense(p: C.ModeSenseParams): Promise<ScsiCommandResult> {
    const n = C.cdbModeSense(this.scratch, p);
    const alloc = p.ten ? (p.allocLen ?? 512) : Math.min(p.allocLen ?? 255, 255);
    return this.command(this.cdb(n), null, alloc);
  }

  private blocksOf(data: Uint8Array, blockSize: number): number {
    if (blockSize <= 0 || data.length % blockSize !== 0) {
      throw new VirtioScsiError('BAD_ARGUMENT', `data of ${data.length} bytes is not a multiple of the block size ${blockSize}`);
    }
    return data.length / blockSize;
  }
}
