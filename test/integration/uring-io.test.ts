// A vhost-user-blk controller on an io_uring file bdev: guest writes land in the file, reads come
// from it, flush succeeds, discard punches holes; the same through the forced thread-pool fallback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, openSync, readSync, closeSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon } from './daemon-process.ts';
import { GuestMemoryArena } from '../../src/frontend/guest-memory-arena.ts';
import { connectLikeQemuBlk } from '../../src/frontend/qemu-like-blk.ts';

function readFileAt(path: string, offset: number, len: number): Uint8Array {
  const b = new Uint8Array(len);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, b, 0, len, offset);
  } finally {
    closeSync(fd);
  }
  return b;
}

for (const fallback of [false, true]) {
  test(`uring bdev${fallback ? ' (thread-pool fallback)' : ''}: guest data reaches the file and comes back`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vhostd-uring-'));
    const file = join(dir, 'disk.img');
    writeFileSync(file, '');
    truncateSync(file, 8 << 20);
    // Data already in the file must be what the guest reads.
    const pre = new Uint8Array(4096).fill(0x77);
    const fd = openSync(file, 'r+');
    writeSync(fd, pre, 0, 4096, 1 << 20);
    closeSync(fd);
    const prev = process.env.VHOSTD_FORCE_URING_FALLBACK;
    if (fallback) process.env.VHOSTD_FORCE_URING_FALLBACK = '1';
    const d = await startDaemon();
    if (fallback) {
      if (prev === undefined) delete process.env.VHOSTD_FORCE_URING_FALLBACK;
      else process.env.VHOSTD_FORCE_URING_FALLBACK = prev;
    }
    const arena = new GuestMemoryArena();
    try {
      await d.call('bdev_uring_create', { name: 'u0', filename: file, block_size: 512 });
      await d.call('vhost_create_blk_controller', { ctrlr: 'u', dev_name: 'u0' });
      const c = await connectLikeQemuBlk({ socketPath: d.socket('u'), arena, numQueues: 2, queueSize: 64, driver: { maxDataBytes: 65536, timeoutMs: 5000 } });
      try {
        assert.equal(c.config.capacity, (8 << 20) / 512);
        assert.deepEqual((await c.driver.read((1 << 20) / 512, 8)).data, pre);
        const data = new Uint8Array(65536).map((_, i) => (i * 7 + 5) & 0xff);
        const writes = [];
        for (let k = 0; k < 16; k++) writes.push(c.driver.write(k * 128, data, { qi: k % 2 }));
        for (const w of await Promise.all(writes)) assert.equal(w.status, 0);
        assert.equal((await c.driver.flush()).status, 0);
        assert.deepEqual(readFileAt(file, 5 * 65536, 65536), data);
        assert.deepEqual((await c.driver.read(3 * 128, 128, { qi: 1 })).data, data);
        assert.equal((await c.driver.discard([{ sector: 128, numSectors: 128 }])).status, 0);
        assert.deepEqual((await c.driver.read(128, 128)).data, new Uint8Array(65536));
        assert.deepEqual(readFileAt(file, 65536, 65536), new Uint8Array(65536));
        assert.equal((await c.driver.read((8 << 20) / 512, 1)).status, 1); // past the end: IOERR
        // The fallback never happens silently.
        assert.equal(d.stderr.join('').includes('thread-pool fallback'), fallback);
      } finally {
        await c.stop();
        c.close();
      }
    } finally {
      arena.close();
      assert.equal(await d.stop(), 0, d.stderr.join(''));
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
