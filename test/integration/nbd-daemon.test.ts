// The NBD bdev as a user runs it: vhostd attaches a qemu-nbd export by RPC, a virtio-blk front-end
// writes and reads through a vhost-user-blk controller, the data is in the server's image; the
// server killed and restarted under guest I/O costs no acknowledged write; server errors reach the
// guest as VIRTIO_BLK_S_IOERR; save_config brings the disk back in a new daemon.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startDaemon } from './daemon-process.ts';
import { startNbdServer, type NbdServer } from './nbd-servers.ts';
import { GuestMemoryArena } from '../../src/frontend/guest-memory-arena.ts';
import { connectLikeQemuBlk } from '../../src/frontend/qemu-like-blk.ts';
import { RpcError } from '../../src/rpc/rpc-error.ts';

const S_OK = 0;
const S_IOERR = 1;

function fileAt(path: string, offset: number, len: number): Uint8Array {
  const b = new Uint8Array(len);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, b, 0, len, offset);
  } finally {
    closeSync(fd);
  }
  return b;
}

const pattern = (len: number, seed: number): Uint8Array => new Uint8Array(len).map((_, i) => (i * 13 + seed * 7 + (i >> 8)) & 0xff);

interface NbdInfo {
  state: string;
  connects: number;
  connection_losses: number;
  resent_requests: number;
  transmission_flags: string[];
}

async function nbdInfo(d: Awaited<ReturnType<typeof startDaemon>>, name: string): Promise<NbdInfo> {
  const [b] = (await d.call('bdev_get_bdevs', { name })) as { driver_specific: { nbd: NbdInfo } }[];
  return b.driver_specific.nbd;
}

test('vhostd blk controller on an NBD export (qemu-nbd over TCP): guest I/O, a server restart under I/O, save_config', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vhostd-nbd-it-'));
  const image = join(dir, 'disk.raw');
  writeFileSync(image, '');
  truncateSync(image, 16 << 20);
  const server = await startNbdServer({ kind: 'qemu-nbd', dir, image, transport: 'tcp' });
  const arena = new GuestMemoryArena();
  try {
    await attachRestartAndReplay(dir, image, server, arena);
  } finally {
    arena.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

async function attachRestartAndReplay(dir: string, image: string, server: NbdServer, arena: GuestMemoryArena): Promise<void> {
  const d = await startDaemon();
  let saved = '';
  try {
    // A missing export is a clear RPC error, and no bdev is left behind.
    await assert.rejects(d.call('bdev_nbd_client_create', { name: 'bad', host: '127.0.0.1', port: server.port, export_name: 'nope' }), (e: unknown) => e instanceof RpcError && /no export 'nope'/.test(e.message + JSON.stringify(e.data)));
    await assert.rejects(d.call('bdev_nbd_client_create', { name: 'bad', socket: '/x', host: '127.0.0.1' }), (e: unknown) => e instanceof RpcError && /socket .*or as host/.test(JSON.stringify(e.data)));
    assert.equal(await d.call('bdev_nbd_client_create', { name: 'nbd0', host: '127.0.0.1', port: server.port, reconnect_delay_sec: 0.2 }), 'nbd0');
    await d.call('vhost_create_blk_controller', { ctrlr: 'n', dev_name: 'nbd0' });
    const c = await connectLikeQemuBlk({ socketPath: d.socket('n'), arena, numQueues: 2, queueSize: 128, driver: { maxDataBytes: 65536, timeoutMs: 30_000 } });
    try {
      assert.equal(c.config.capacity, (16 << 20) / 512);
      const data = pattern(65536, 1);
      const ws = [];
      for (let k = 0; k < 32; k++) ws.push(c.driver.write(k * 128, data, { qi: k % 2 }));
      for (const w of await Promise.all(ws)) assert.equal(w.status, S_OK);
      assert.equal((await c.driver.flush()).status, S_OK);
      assert.deepEqual(fileAt(image, 7 * 65536, 65536), data);
      assert.deepEqual((await c.driver.read(3 * 128, 128, { qi: 1 })).data, data);
      assert.equal((await c.driver.discard([{ sector: 0, numSectors: 128 }])).status, S_OK);
      assert.equal((await c.driver.writeZeroes([{ sector: 128, numSectors: 128 }], false)).status, S_OK);
      assert.deepEqual((await c.driver.read(128, 128)).data, new Uint8Array(65536));
      let info = await nbdInfo(d, 'nbd0');
      assert.equal(info.state, 'connected');
      assert.ok(info.transmission_flags.includes('flush') && info.transmission_flags.includes('trim'), info.transmission_flags.join());

      // The server dies with 48 writes of the guest in flight and comes back 1.5 s later.
      const writes: Promise<{ status: number }>[] = [];
      const bufs: Uint8Array[] = [];
      for (let k = 0; k < 48; k++) {
        const b = pattern(16384, 50 + k);
        bufs.push(b);
        writes.push(c.driver.write(8192 + k * 32, b, { qi: k % 2 }));
      }
      await server.kill();
      // Writes sent to the dead server (the first 48 may have finished before it died).
      let lateDone = 0;
      for (let k = 48; k < 64; k++) {
        const b = pattern(16384, 50 + k);
        bufs.push(b);
        writes.push(
          c.driver.write(8192 + k * 32, b, { qi: k % 2 }).then((r) => {
            lateDone++;
            return r;
          }),
        );
      }
      await sleep(1500);
      assert.equal(lateDone, 0, 'writes wait while the server is away');
      info = await nbdInfo(d, 'nbd0');
      assert.notEqual(info.state, 'connected');
      await server.start();
      for (const w of await Promise.all(writes)) assert.equal(w.status, S_OK);
      assert.equal((await c.driver.flush()).status, S_OK);
      for (let k = 0; k < 64; k++) assert.deepEqual(fileAt(image, (8192 + k * 32) * 512, 16384), bufs[k], `write ${k} in the image`);
      info = await nbdInfo(d, 'nbd0');
      assert.equal(info.state, 'connected');
      assert.ok(info.connection_losses >= 1, JSON.stringify(info));
      saved = JSON.stringify(await d.call('save_config'));
    } finally {
      await c.stop();
      c.close();
    }
  } finally {
    assert.equal(await d.stop(), 0, d.stderr.join(''));
  }
  // The saved configuration attaches the same export again.
  const cfgFile = join(dir, 'saved.json');
  writeFileSync(cfgFile, saved);
  const call = (JSON.parse(saved) as { subsystems: { subsystem: string; config: { method: string; params: Record<string, unknown> }[] }[] }).subsystems
    .find((s) => s.subsystem === 'bdev')
    ?.config.find((x) => x.method === 'bdev_nbd_client_create');
  assert.deepEqual(call?.params.port, server.port);
  assert.equal(call?.params.reconnect_delay_sec, 0.2);
  const d2 = await startDaemon(['-c', cfgFile]);
  try {
    await d2.call('framework_wait_init');
    const c2 = await connectLikeQemuBlk({ socketPath: d2.socket('n'), arena, numQueues: 1, queueSize: 64, driver: { maxDataBytes: 65536, timeoutMs: 10_000 } });
    try {
      assert.deepEqual((await c2.driver.read(3 * 128, 128)).data, pattern(65536, 1));
    } finally {
      await c2.stop();
      c2.close();
    }
  } finally {
    assert.equal(await d2.stop(), 0, d2.stderr.join(''));
  }
}

test('vhostd on nbdkit: a server error is VIRTIO_BLK_S_IOERR for that request only', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vhostd-nbd-it-'));
  // Reads of the second MiB fail; the rest works.
  const server = await startNbdServer({ kind: 'nbdkit', dir, extraArgs: ['--filter=error'], params: ['error=EIO', 'error-pread-rate=100%', `error-pread-file=${join(dir, 'fail-reads')}`] });
  const d = await startDaemon();
  const arena = new GuestMemoryArena();
  try {
    await d.call('bdev_nbd_client_create', { name: 'k0', socket: server.socket });
    await d.call('vhost_create_blk_controller', { ctrlr: 'k', dev_name: 'k0' });
    const c = await connectLikeQemuBlk({ socketPath: d.socket('k'), arena, numQueues: 1, queueSize: 64, driver: { maxDataBytes: 65536, timeoutMs: 10_000 } });
    try {
      const data = pattern(4096, 9);
      assert.equal((await c.driver.write(0, data)).status, S_OK);
      assert.deepEqual((await c.driver.read(0, 8)).data, data);
      writeFileSync(join(dir, 'fail-reads'), '');
      assert.equal((await c.driver.read(0, 8)).status, S_IOERR);
      assert.equal((await c.driver.write(8, data)).status, S_OK);
      rmSync(join(dir, 'fail-reads'));
      assert.deepEqual((await c.driver.read(8, 8)).data, data);
      const info = await nbdInfo(d, 'k0');
      assert.equal(info.connection_losses, 0, JSON.stringify(info) + d.stderr.join(''));
    } finally {
      await c.stop();
      c.close();
    }
  } finally {
    arena.close();
    assert.equal(await d.stop(), 0, d.stderr.join(''));
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
