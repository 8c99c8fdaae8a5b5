// A small blobstore on a RAM device, as most blob tests use: 4 MiB, 16 KiB clusters, 32 md pages.
import assert from 'node:assert/strict';
import { Blobstore } from '../../../src/blob/blobstore.ts';
import { BlobError } from '../../../src/blob/blob-error.ts';
import { RamBlobDevice } from '../../../src/blob/ram-blob-device.ts';
import type { FormatOptions } from '../../../src/blob/blobstore-init.ts';

export const CS = 16 * 1024;

export async function newStore(opts: FormatOptions & { blockSize?: number; bytes?: number } = {}) {
  const blockSize = opts.blockSize ?? 4096;
  const dev = new RamBlobDevice(blockSize, (opts.bytes ?? 4 * 1024 * 1024) / blockSize);
  const bs = await Blobstore.create(dev, { clusterSize: CS, mdPages: 32, ...opts });
  return { dev, bs };
}

/** `len` bytes of a recognisable pattern. */
export function fill(len: number, seed: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (seed * 37 + i * 3 + (i >> 12)) & 0xff;
  return b;
}

export async function readAll(bs: Blobstore, id: number): Promise<Uint8Array> {
  const b = bs.openBlob(id);
  try {
    const out = new Uint8Array(b.sizeBytes);
    await bs.readBlob(b, 0, out.length, out);
    return out;
  } finally {
    b.close();
  }
}

export async function write(bs: Blobstore, id: number, offset: number, data: Uint8Array): Promise<void> {
  const b = bs.openBlob(id);
  try {
    await bs.writeBlob(b, offset, data);
  } finally {
    b.close();
  }
}

export function code(c: string) {
  return (e: unknown) => e instanceof BlobError && e.code === c;
}

export async function rejectsCode(p: Promise<unknown>, c: string): Promise<void> {
  await assert.rejects(p, code(c));
}
