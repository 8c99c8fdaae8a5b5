// The state of a loaded blobstore and its primitive steps: cluster and page allocation, and the
// ordered metadata writes every operation is built from. The ordering rules (docs/
// blobstore-format.md, "Sync ordering") live here, in persist() and eraseMd():
//   data clusters, flush -> new chained pages, flush -> the root page (one atomic 4 KiB write),
//   flush -> only then are old pages / clusters released for reuse.
import { BlobError } from './blob-error.ts';
import type { BlobDevice } from './blob-device.ts';
import { Bitmap } from './bitmap.ts';
import { BlobRecord } from './blob-record.ts';
import { encodeBlobMd } from './blob-md-codec.ts';
import { TRANSLATE_ZEROES, translateRead } from './cluster-map.ts';
import {
  BLOB_ID_NONE, BS_MASK_TYPE_USED_BLOBIDS, BS_MASK_TYPE_USED_CLUSTERS, BS_MASK_TYPE_USED_PAGES, BS_PAGE_SIZE,
  BS_VERSION, mdPageOffset, type BlobstoreLayout,
} from './blobstore-layout.ts';
import { encodeMaskRegion } from './mask-region.ts';
import { MD_PAGE_NONE, sealMdPage } from './md-page.ts';
import { SerialQueue } from './serial-queue.ts';
import { encodeSuperBlock } from './super-block.ts';

const ZERO_PAGE = new Uint8Array(BS_PAGE_SIZE);

export class BlobstoreCore {
  readonly device: BlobDevice;
  /** Replaced (never edited) when the blobstore grows. */
  layout: BlobstoreLayout;
  usedClusters: Bitmap;
  /** Metadata pages in use (index within the metadata region). */
  readonly usedPages: Bitmap;
  /** Metadata pages that are a blob's root page. */
  readonly usedBlobIds: Bitmap;
  readonly blobs = new Map<number, BlobRecord>();
  readonly queue = new SerialQueue();
  readonly bstype: string;
  readonly uuid: Uint8Array;
  superBlobId = BLOB_ID_NONE;
  /** Unmap clusters when released and before a thick blob gets them, so they read as zeroes. */
  clearByUnmap: boolean;
  unloaded = false;

  constructor(device: BlobDevice, layout: BlobstoreLayout, bstype: string, uuid: Uint8Array, clearByUnmap: boolean) {
    this.device = device;
    this.layout = layout;
    this.bstype = bstype;
    this.uuid = uuid;
    this.clearByUnmap = clearByUnmap;
    this.usedClusters = new Bitmap(layout.totalClusters);
    this.usedPages = new Bitmap(layout.mdLen);
    this.usedBlobIds = new Bitmap(layout.mdLen);
    this.markReservedClusters();
  }

  markReservedClusters(): void {
    for (let c = 0; c < this.layout.reservedClusters; c++) this.usedClusters.set(c);
  }

  checkLoaded(): void {
    if (this.unloaded) throw new BlobError('UNLOADED', 'the blobstore has been unloaded');
  }

  record(id: number): BlobRecord {
    const rec = this.blobs.get(id);
    if (!rec) throw new BlobError('BLOB_NOT_FOUND', `no blob with id 0x${id.toString(16)}`);
    return rec;
  }

  get freeClusters(): number {
    return this.layout.totalClusters - this.usedClusters.countSet();
  }

  /** n clusters, or NO_SPACE with nothing allocated. */
  allocClusters(n: number): number[] {
    const out: number[] = [];
    let from = this.layout.reservedClusters;
    while (out.length < n) {
      const c = this.usedClusters.findFirstClear(from);
      if (c < 0) {
        for (const x of out) this.usedClusters.clear(x);
        throw new BlobError('NO_SPACE', `${n} clusters needed, ${out.length} free`);
      }
      this.usedClusters.set(c);
      out.push(c);
      from = c + 1;
    }
    return out;
  }

  releaseClusters(clusters: Iterable<number>): void {
    for (const c of clusters) this.usedClusters.clear(c);
  }

  /** Unmaps clusters (coalesced into runs) when the store is set to; a no-op otherwise. */
  async unmapClusters(clusters: number[]): Promise<void> {
    if (!this.clearByUnmap || clusters.length === 0) return;
    const sorted = [...clusters].sort((a, b) => a - b);
    const cs = this.layout.clusterSize;
    for (let i = 0; i < sorted.length; ) {
      let n = 1;
      while (i + n < sorted.length && sorted[i + n] === sorted[i] + n) n++;
      await this.device.unmap(sorted[i] * cs, n * cs);
      i += n;
    }
  }

  /** Releases clusters no metadata on disk references any more, unmapping them first if asked. */
  async discardClusters(clusters: number[]): Promise<void> {
    // Awaited before release: a late unmap must not wipe a new owner's data.
    await this.unmapClusters(clusters);
    this.releaseClusters(clusters);
  }

  allocPage(): number {
    const p = this.usedPages.findFirstClear(0);
    if (p < 0) throw new BlobError('NO_MD_SPACE', `all ${this.layout.mdLen} metadata pages are in use`);
    this.usedPages.set(p);
    return p;
  }

  /**
   * Writes rec's metadata so that a crash at any point leaves either the old or the new version.
   * New chained pages go to free pages (never over the pages the on-disk root points at), then
   * the root page is overwritten in place: that single page write is the commit point.
   */
  async persist(rec: BlobRecord, clusters?: Uint32Array): Promise<void> {
    const md = rec.toMd();
    // `clusters` lets a caller persist a map it has not yet published to readers.
    if (clusters) md.clusters = clusters;
    const areas = encodeBlobMd(md);
    const chain: number[] = [];
    try {
      for (let i = 1; i < areas.length; i++) chain.push(this.allocPage());
    } catch (e) {
      this.releasePages(chain);
      throw e;
    }
    const pages = areas.map((a, i) => sealMdPage(a, rec.id, i, i < chain.length ? chain[i] : MD_PAGE_NONE));
    const dev = this.device;
    let committing = false;
    try {
      await dev.flush(); // data clusters written by the caller are durable before anything points at them
      if (chain.length > 0) {
        await Promise.all(chain.map((p, k) => dev.write(mdPageOffset(this.layout, p), pages[k + 1])));
        await dev.flush();
      }
      committing = true;
      await dev.write(mdPageOffset(this.layout, rec.rootPage), pages[0]);
      await dev.flush();
    } catch (e) {
      // Before the root write nothing references the new pages; after it, either chain may be live,
      // so both are leaked rather than risk reusing a referenced page.
      if (!committing) this.releasePages(chain);
      throw e;
    }
    this.releasePages(rec.chainPages);
    rec.chainPages = chain;
  }

  /** Removes rec's metadata: its root page is zeroed (fails crc: no blob), then pages are freed. */
  async eraseMd(rec: BlobRecord): Promise<void> {
    await this.device.write(mdPageOffset(this.layout, rec.rootPage), ZERO_PAGE);
    await this.device.flush();
    this.releasePages(rec.chainPages);
    this.usedPages.clear(rec.rootPage);
    this.usedBlobIds.clear(rec.rootPage);
    rec.chainPages = [];
  }

  releasePages(pages: number[]): void {
    for (const p of pages) this.usedPages.clear(p);
  }

  async writeSuper(clean: boolean): Promise<void> {
    const page = encodeSuperBlock({
      version: BS_VERSION, clean, superBlobId: this.superBlobId, layout: this.layout, bstype: this.bstype, uuid: this.uuid,
    });
    await this.device.write(0, page);
    await this.device.flush();
  }

  /** The three masks, as a clean unload writes them (before the super block says clean). */
  async writeMasks(): Promise<void> {
    const L = this.layout;
    await Promise.all([
      this.device.write(L.usedPageMaskStart * BS_PAGE_SIZE, encodeMaskRegion(BS_MASK_TYPE_USED_PAGES, this.usedPages, L.usedPageMaskLen)),
      this.device.write(
        L.usedClusterMaskStart * BS_PAGE_SIZE,
        encodeMaskRegion(BS_MASK_TYPE_USED_CLUSTERS, this.usedClusters, L.usedClusterMaskLen),
      ),
      this.device.write(L.usedBlobIdMaskStart * BS_PAGE_SIZE, encodeMaskRegion(BS_MASK_TYPE_USED_BLOBIDS, this.usedBlobIds, L.usedBlobIdMaskLen)),
    ]);
    await this.device.flush();
  }

  /** Device byte offset of the cluster a read of blob cluster `idx` through rec's parent returns, or TRANSLATE_ZEROES. */
  parentClusterOffset(rec: BlobRecord, idx: number): number {
    return rec.map.parent ? translateRead(rec.map.parent, idx * this.layout.clusterSize) : TRANSLATE_ZEROES;
  }

  /** Reads into dst the whole cluster a read of blob cluster `idx` through rec's parent returns. */
  async readParentCluster(rec: BlobRecord, idx: number, dst: Uint8Array): Promise<void> {
    const cs = this.layout.clusterSize;
    const at = this.parentClusterOffset(rec, idx);
    if (at >= 0) return this.device.read(at, cs, dst);
    dst.fill(0, 0, cs);
  }
}
