// Disk image files on tmpfs for the file-backed rows. Written in full, not truncated: a sparse
// tmpfs file reads its holes from the shared zero page (no page-cache lookup of a real page), which
// flatters every target; a written file makes each read find and copy a real page, as a disk image
// in use does.
import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const CHUNK = 1 << 20;

/** Creates `dir/name` of `sizeMiB` MiB, every page written (a byte pattern, not zeros). */
export function createTmpfsImage(dir: string, name: string, sizeMiB: number): string {
  const path = join(dir, name);
  const chunk = Buffer.alloc(CHUNK);
  for (let i = 0; i < CHUNK; i += 4) chunk.writeUInt32LE((i * 2654435761) >>> 0, i);
  const fd = openSync(path, 'w');
  try {
    for (let i = 0; i < sizeMiB; i++) writeSync(fd, chunk, 0, CHUNK, i * CHUNK);
  } finally {
    closeSync(fd);
  }
  return path;
}

/** Removes an image (the RAM it holds is only given back then). */
export function removeTmpfsImage(path: string | null): void {
  if (path) rmSync(path, { force: true });
}
