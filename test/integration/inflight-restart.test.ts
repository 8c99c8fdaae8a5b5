// A daemon killed with requests in flight, restarted from its saved config on the same socket: the
// front-end reconnects as QEMU does (rings restart at used.idx, the inflight region handed back)
// and the restarted daemon serves exactly the requests the dead one had taken and not completed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type Daemon } from './daemon-process.ts';
import { GuestMemoryArena } from '../../src/frontend/guest-memory-arena.ts';
import { connectLikeQemuBlk } from '../../src/frontend/qemu-like-blk.ts';
import type { DriverSplitQueue } from '../../src/frontend/driver-split-queue.ts';

const S_OK = 0;
const SECTOR = 512;
/** Writes wait this long in the delay bdev, so they are in flight when the daemon dies. */
const WRITE_DELAY_US = 1_500_000;

function pattern(seed: number, len: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (seed * 31 + i * 7) & 0xff;
  return b;
}

async function until(what: string, ok: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function kill(d: Daemon): Promise<void> {
  const gone = new Promise((r) => d.proc.once('exit', r));
  d.proc.kill('SIGKILL');
  await gone;
  await d.stop();
}

test('requests in flight when the daemon is killed complete once, after the restarted daemon serves them', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vhostd-inflight-'));
  const image = join(dir, 'disk.img');
  writeFileSync(image, new Uint8Array(4 << 20));
  let d = await startDaemon([], { dir });
  t.after(async () => {
    await d.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  await d.call('bdev_uring_create', { name: 'u0', filename: image, block_size: SECTOR });
  await d.call('bdev_delay_create', {
    base_bdev_name: 'u0', name: 'slow', avg_read_latency: 0, nine_nine_read_latency: 0, avg_write_latency: WRITE_DELAY_US, nine_nine_write_latency: WRITE_DELAY_US,
  });
  await d.call('vhost_create_blk_controller', { ctrlr: 'b0', dev_name: 'slow' });
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify(await d.call('save_config', {})));

  const arena = new GuestMemoryArena();
  const c = await connectLikeQemuBlk({ socketPath: d.socket('b0'), arena, numQueues: 1, queueSize: 64, driver: { maxDataBytes: 65536, timeoutMs: 30_000 } });
  t.after(() => {
    c.close();
    arena.close();
  });
  const q = c.session.queues[0] as DriverSplitQueue;
  assert.ok(c.session.inflight !== null && c.session.inflight.fd >= 0, 'the daemon handed out an inflight region');

  // Avail order: W1, R1, W2, R2. The reads complete at once, the writes wait in the delay bdev:
  // the dead daemon leaves used.idx at 2 with W1 and W2 (avail positions 0 and 2) outstanding.
  // Resuming the avail ring at used.idx without the record would serve W2 and R2 again and never W1.
  const w1data = pattern(1, 4096);
  const w2data = pattern(2, 8192);
  const w1 = c.driver.write(8, w1data);
  const r1 = await c.driver.read(100, 8);
  const w2 = c.driver.write(64, w2data);
  const r2 = await c.driver.read(200, 8);
  assert.deepEqual([r1.status, r2.status], [S_OK, S_OK]);
  assert.equal(q.ringUsedIdx, 2);
  assert.equal(q.inFlight, 2);

  await kill(d);
  d = await startDaemon(['-c', config], { dir });
  await d.call('framework_wait_init', {});
  await c.session.reconnect(d.socket('b0'));
  const [a, b] = await Promise.all([w1, w2]);
  assert.deepEqual([a.status, b.status], [S_OK, S_OK], 'both writes completed after the restart');
  assert.equal(q.ringUsedIdx, 4, 'each request in the used ring once');
  assert.equal(q.inFlight, 0);

  const file = readFileSync(image);
  assert.deepEqual(new Uint8Array(file.subarray(8 * SECTOR, 8 * SECTOR + 4096)), w1data);
  assert.deepEqual(new Uint8Array(file.subarray(64 * SECTOR, 64 * SECTOR + 8192)), w2data);
  // The ring goes on normally.
  const r3 = await c.driver.read(8, 8);
  assert.deepEqual([r3.status, [...r3.data.subarray(0, 16)]], [S_OK, [...w1data.subarray(0, 16)]]);
  await c.stop();
});
