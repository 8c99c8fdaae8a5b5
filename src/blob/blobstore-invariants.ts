// Consistency checks over a blobstore's state (what the crash harness asserts after every
// recovery; also usable as an fsck). Returns one line per violation, empty when consistent.
import type { BlobstoreInspection } from './blobstore.ts';
import { blobIdOfPage, BLOB_ID_NONE } from './blobstore-layout.ts';

export function findInvariantViolations(s: BlobstoreInspection): string[] {
  const out: string[] = [];
  const L = s.layout;
  const hex = (id: number) => '0x' + id.toString(16);
  for (let c = 0; c < L.reservedClusters; c++) {
    if (!s.usedClusters.get(c)) out.push(`metadata cluster ${c} is marked free`);
  }
  const clusterOwner = new Map<number, number>();
  const pageOwner = new Map<number, number>();
  const byId = new Map(s.blobs.map((b) => [b.id, b]));
  for (const b of s.blobs) {
    if (b.id !== blobIdOfPage(b.rootPage)) out.push(`blob ${hex(b.id)} has root page ${b.rootPage}`);
    if (!s.usedBlobIds.get(b.rootPage)) out.push(`blob ${hex(b.id)} is not in the blob id bitmap`);
    if (b.pendingKind !== 0) out.push(`blob ${hex(b.id)} still carries pending marker ${b.pendingKind}`);
    for (const p of [b.rootPage, ...b.chainPages]) {
      const prev = pageOwner.get(p);
      if (prev !== undefined) out.push(`page ${p} belongs to ${hex(prev)} and ${hex(b.id)}`);
      pageOwner.set(p, b.id);
      if (!s.usedPages.get(p)) out.push(`page ${p} of blob ${hex(b.id)} is marked free`);
    }
    for (const c of b.clusters) {
      if (c === 0) continue;
      if (c < L.reservedClusters || c >= L.totalClusters) out.push(`blob ${hex(b.id)} owns cluster ${c}, not a data cluster`);
      const prev = clusterOwner.get(c);
      if (prev !== undefined) out.push(`cluster ${c} is owned by ${hex(prev)} and ${hex(b.id)}`);
      clusterOwner.set(c, b.id);
      if (c < L.totalClusters && !s.usedClusters.get(c)) out.push(`cluster ${c} of blob ${hex(b.id)} is both used and marked free`);
    }
    if (b.parentId !== BLOB_ID_NONE) {
      const p = byId.get(b.parentId);
      if (!p) out.push(`blob ${hex(b.id)} has missing parent ${hex(b.parentId)}`);
      else {
        if (!p.cloneIds.includes(b.id)) out.push(`parent ${hex(p.id)} does not list clone ${hex(b.id)}`);
        if (!p.readOnly) out.push(`parent ${hex(p.id)} of ${hex(b.id)} is writable`);
      }
    }
    for (const c of b.cloneIds) {
      if (byId.get(c)?.parentId !== b.id) out.push(`blob ${hex(b.id)} lists clone ${hex(c)}, which does not point back`);
    }
    let depth = 0;
    for (let p = b.parentId; p !== BLOB_ID_NONE && depth <= s.blobs.length; depth++) p = byId.get(p)?.parentId ?? BLOB_ID_NONE;
    if (depth > s.blobs.length) out.push(`blob ${hex(b.id)}: parent chain loops`);
  }
  for (let c = L.reservedClusters; c < L.totalClusters; c++) {
    if (s.usedClusters.get(c) && !clusterOwner.has(c)) out.push(`cluster ${c} is marked used but no blob owns it (leak)`);
  }
  for (let p = 0; p < L.mdLen; p++) {
    if (s.usedPages.get(p) && !pageOwner.has(p)) out.push(`metadata page ${p} is marked used but no blob owns it (leak)`);
    if (s.usedBlobIds.get(p) && !byId.has(blobIdOfPage(p))) out.push(`blob id bit ${p} is set but no such blob exists`);
  }
  return out;
}
