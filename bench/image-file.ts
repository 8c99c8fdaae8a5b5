// Disk image files (on tmpfs or on disk) for the file-backed rows. Written in full, not truncated:
// a sparse tmpfs file reads its holes from the shared zero page (no page-cache lookup of a real
// page) and a sparse file on disk reads holes without touching the device, which flatters every
// target; a written file makes each read find real data, as a disk image in use does.
import { closeSync, fsyncSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const CHUNK = 1 << 20;

/** Creates `dir/name` of `sizeMiB` MiB, every page written (a byte pattern, not zeros). */
export function createImageFile(dir: string, name: string, sizeMiB: number): string {
  const path = join(dir, name);
  const chunk = Buffer.alloc(CHUNK);
  for (let i = 0; i < CHUNK; i += 4) chunk.writeUInt32LE((i * 2654435761) >>> 0, i);
  const fd = openSync(path, 'w');
  try {
    for (let i = 0; i < sizeMiB; i++) writeSync(fd, chunk, 0, CHUNK, i * CHUNK);
    // On disk: the writeback of this gigabyte must not run during the measurement.
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return path;
}

/** Removes an image (the RAM it holds is only given back then). */
export function removeImageFile(path: string | null): void {
  if (path) rmSync(path, { force: true });
}
