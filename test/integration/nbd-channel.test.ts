// The NBD bdev's channel against real servers (qemu-nbd on a raw file, nbdkit's memory plugin),
// driven from this thread as a reactor would drive it: data written lands in the server's image
// and reads back, large I/O goes in parts, trim and write-zeroes, server errors complete the I/O
// with an error, a server killed and restarted under I/O gets every request resent, and one that
// stays away makes held I/O fail after fast_io_fail_timeout instead of hanging.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as yieldLoop, setTimeout as sleep } from 'node:timers/promises';
import { BDEV_EINVAL, BDEV_EIO, BDEV_OK, BDEV_EROFS, type BdevChannel } from '../../src/bdev/bdev.ts';
import { createNbdBdev, type NbdBdev, type NbdBdevOptions } from '../../src/bdev/modules/nbd.ts';
import { NbdChannel } from '../../src/bdev/modules/nbd-channel.ts';
import { NbdError } from '../../src/bdev/modules/nbd-handshake.ts';
import { SgList } from '../../src/iovec/sg-list.ts';
import { NbdServer, startNbdServer } from './nbd-servers.ts';

class Waiter {
  status: number | null = null;
  bdevIoDone(s: number): void {
    this.status = s;
  }
}

/** Polls the channel until every waiter has its status. */
async function settle(ch: BdevChannel, waiters: Waiter[], timeoutMs = 20_000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  while (waiters.some((w) => w.status === null)) {
    ch.poll();
    if (Date.now() > deadline) throw new Error(`I/O not completed within ${timeoutMs} ms (${waiters.filter((w) => w.status === null).length} left)`);
    await yieldLoop();
  }
  return waiters.map((w) => w.status as number);
}

function sgOf(buf: Uint8Array): SgList {
  const sg = new SgList(4);
  sg.push(buf, 0, buf.length);
  return sg;
}

function pattern(len: number, seed: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (i * 31 + seed * 17 + (i >> 9)) & 0xff;
  return b;
}

async function readBlocks(ch: BdevChannel, lba: number, blocks: number): Promise<{ status: number; data: Uint8Array }> {
  const data = new Uint8Array(blocks * ch.blockSize);
  const w = new Waiter();
  ch.read(lba, blocks, sgOf(data), 0, w);
  const [status] = await settle(ch, [w]);
  return { status, data };
}

async function writeBlocks(ch: BdevChannel, lba: number, data: Uint8Array): Promise<number> {
  const w = new Waiter();
  ch.write(lba, data.length / ch.blockSize, sgOf(data), 0, w);
  return (await settle(ch, [w]))[0];
}

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

interface Fixture {
  dir: string;
  image: string;
  server: NbdServer;
  bdev: NbdBdev;
  ch: NbdChannel;
  close(): Promise<void>;
}

async function fixture(server: Partial<ConstructorParameters<typeof NbdServer>[0]> & { kind: 'qemu-nbd' | 'nbdkit' }, bdevOpts: Partial<NbdBdevOptions> = {}): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'vhostd-nbd-'));
  const image = join(dir, 'disk.raw');
  writeFileSync(image, '');
  truncateSync(image, 32 << 20);
  const s = await startNbdServer({ dir, image, ...server });
  const bdev = await createNbdBdev({ name: 'nbd0', address: s.address, ...bdevOpts });
  const ch = new NbdChannel(bdev.channelSpec());
  return {
    dir,
    image,
    server: s,
    bdev,
    ch,
    async close() {
      ch.close();
      await s.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

for (const [kind, transport] of [
  ['qemu-nbd', 'unix'],
  ['nbdkit', 'tcp'],
] as const) {
  test(`nbd channel on ${kind} over ${transport}: writes reach the export, reads, flush, trim, write-zeroes, large I/O in parts`, async () => {
    const f = await fixture({ kind, transport, size: '32M' });
    try {
      const { ch, bdev } = f;
      assert.equal(bdev.blockSize, 512);
      assert.equal(bdev.numBlocks, (32 << 20) / 512);
      const info = bdev.driverSpecific().nbd as Record<string, unknown>;
      assert.equal(info.structured_replies, true);
      assert.equal(info.state, 'idle'); // a channel is open; it connects at its first I/O
      // 16 writes in flight at once, then read back together.
      const chunk = 64 * 1024;
      const ws: Waiter[] = [];
      const bufs: Uint8Array[] = [];
      for (let k = 0; k < 16; k++) {
        const b = pattern(chunk, k);
        bufs.push(b);
        const w = new Waiter();
        ch.write((k * chunk) / 512, chunk / 512, sgOf(b), 0, w);
        ws.push(w);
      }
      assert.deepEqual(await settle(ch, ws), new Array(16).fill(BDEV_OK));
      const flush = new Waiter();
      ch.flush(0, 0, flush);
      assert.deepEqual(await settle(ch, [flush]), [BDEV_OK]);
      if (kind === 'qemu-nbd') assert.deepEqual(fileAt(f.image, 5 * chunk, chunk), bufs[5]);
      const rs: { w: Waiter; data: Uint8Array }[] = [];
      for (let k = 0; k < 16; k++) {
        const data = new Uint8Array(chunk);
        const w = new Waiter();
        ch.read((k * chunk) / 512, chunk / 512, sgOf(data), 0, w);
        rs.push({ w, data });
      }
      await settle(ch, rs.map((r) => r.w));
      for (let k = 0; k < 16; k++) assert.deepEqual(rs[k].data, bufs[k], `read ${k}`);
      // Larger than a part (2 MiB): sent as three parts, one reply each.
      const big = pattern(5 << 20, 99);
      assert.equal(await writeBlocks(ch, 8192, big), BDEV_OK);
      const back = await readBlocks(ch, 8192, big.length / 512);
      assert.equal(back.status, BDEV_OK);
      assert.ok(Buffer.from(back.data).equals(Buffer.from(big)), '5 MiB read back');
      // Write-zeroes and trim.
      const wz = new Waiter();
      ch.writeZeroes(8192, 1024, wz);
      assert.deepEqual(await settle(ch, [wz]), [BDEV_OK]);
      const z = await readBlocks(ch, 8192, 1024);
      assert.deepEqual(z.data, new Uint8Array(1024 * 512));
      assert.ok(Buffer.from((await readBlocks(ch, 9216, 8)).data).equals(Buffer.from(big.subarray(512 * 1024, 512 * 1024 + 4096))), 'after the zeroed range: data');
      const tr = new Waiter();
      ch.unmap(0, 128, tr);
      assert.deepEqual(await settle(ch, [tr]), [BDEV_OK]);
      // Past the end: EINVAL without a request.
      assert.equal((await readBlocks(ch, bdev.numBlocks, 1)).status, BDEV_EINVAL);
      const state = bdev.connectionState();
      assert.equal(state.state, 'connected');
      assert.equal(state.connects, 1);
    } finally {
      await f.close();
    }
  });
}

test('nbd channel without structured replies (nbdkit --no-sr) and through NBD_OPT_EXPORT_NAME (--mask-handshake=0)', async () => {
  for (const extraArgs of [['--no-sr'], ['--mask-handshake=0']]) {
    const f = await fixture({ kind: 'nbdkit', extraArgs });
    try {
      const info = f.bdev.driverSpecific().nbd as Record<string, unknown>;
      assert.equal(info.structured_replies, false, extraArgs.join(' '));
      assert.equal(info.export_name_handshake, extraArgs[0] === '--mask-handshake=0');
      const data = pattern(128 * 1024, 7);
      assert.equal(await writeBlocks(f.ch, 100, data), BDEV_OK);
      const r = await readBlocks(f.ch, 100, 256);
      assert.equal(r.status, BDEV_OK);
      assert.deepEqual(r.data, data);
    } finally {
      await f.close();
    }
  }
});

test('nbd: a missing export, a refused block size and a server that is not there are clear errors', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vhostd-nbd-'));
  const image = join(dir, 'disk.raw');
  writeFileSync(image, '');
  truncateSync(image, 1 << 20);
  const s = await startNbdServer({ kind: 'qemu-nbd', dir, image, extraArgs: ['-x', 'disk1'] });
  try {
    await assert.rejects(createNbdBdev({ name: 'n', address: s.address, exportName: 'nope' }), (e: unknown) => e instanceof NbdError && e.code === 'NBD_EXPORT_NOT_FOUND' && /nope/.test(e.message));
    const ok = await createNbdBdev({ name: 'n', address: s.address, exportName: 'disk1' });
    assert.equal(ok.numBlocks, 2048);
    await assert.rejects(
      createNbdBdev({ name: 'n', address: { socket: join(dir, 'absent.sock') } }),
      (e: unknown) => e instanceof NbdError && e.code === 'NBD_CONNECT_FAILED' && /absent\.sock/.test(e.message),
    );
  } finally {
    await s.stop();
  }
  const k = await startNbdServer({ kind: 'nbdkit', dir, extraArgs: ['--filter=blocksize-policy'], params: ['blocksize-minimum=4096', 'blocksize-preferred=4096'] });
  try {
    await assert.rejects(createNbdBdev({ name: 'n', address: k.address, blockSize: 512 }), /minimum block is 4096/);
    const b = await createNbdBdev({ name: 'n', address: k.address });
    assert.equal(b.blockSize, 4096);
  } finally {
    await k.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('nbd channel: errors from the server complete the I/O with an error, and the connection stays', async () => {
  const f = await fixture({ kind: 'nbdkit', extraArgs: ['--filter=error'], params: ['error=EIO', 'error-pread-rate=100%'] });
  try {
    assert.equal(await writeBlocks(f.ch, 0, pattern(4096, 1)), BDEV_OK);
    for (let i = 0; i < 3; i++) assert.equal((await readBlocks(f.ch, 0, 8)).status, BDEV_EIO);
    assert.equal(f.bdev.connectionState().connects, 1);
  } finally {
    await f.close();
  }
  const ro = await fixture({ kind: 'qemu-nbd', extraArgs: ['-r'] });
  try {
    assert.equal(ro.bdev.readOnly, true);
    assert.equal(ro.bdev.ioTypes.write, false);
    assert.equal(await writeBlocks(ro.ch, 0, pattern(4096, 1)), BDEV_EROFS);
    assert.equal((await readBlocks(ro.ch, 0, 8)).status, BDEV_OK);
  } finally {
    await ro.close();
  }
});

test('nbd channel: a server killed under I/O and restarted gets every request resent; none is lost', async () => {
  const f = await fixture({ kind: 'qemu-nbd' }, { timeouts: { reconnectDelayMs: 200 } });
  try {
    const { ch } = f;
    assert.equal(await writeBlocks(ch, 0, pattern(4096, 0)), BDEV_OK);
    // 64 writes in flight, then the server dies.
    const ws: Waiter[] = [];
    const bufs: Uint8Array[] = [];
    for (let k = 0; k < 64; k++) {
      const b = pattern(32768, 100 + k);
      bufs.push(b);
      const w = new Waiter();
      ch.write(2048 + k * 64, 64, sgOf(b), 0, w);
      ws.push(w);
    }
    ch.poll();
    await f.server.kill();
    // Requests wait while the server is away (well inside fast_io_fail_timeout).
    const until = Date.now() + 1500;
    while (Date.now() < until) {
      ch.poll();
      await sleep(5);
    }
    assert.ok(ws.some((w) => w.status === null), 'some writes still held while the server is down');
    assert.notEqual(f.bdev.connectionState().state, 'connected');
    await f.server.start();
    assert.deepEqual(await settle(ch, ws), new Array(64).fill(BDEV_OK));
    const st = f.bdev.connectionState();
    assert.equal(st.state, 'connected');
    assert.ok((st.connects as number) >= 2, `connects ${String(st.connects)}`);
    assert.equal(st.connection_losses, 1);
    for (let k = 0; k < 64; k++) assert.deepEqual(fileAt(f.image, (2048 + k * 64) * 512, 32768), bufs[k], `write ${k} in the image`);
  } finally {
    await f.close();
  }
});

test('nbd channel: with the server gone past fast_io_fail_timeout, held I/O fails with EIO, then works again once it is back', async () => {
  const f = await fixture({ kind: 'qemu-nbd' }, { timeouts: { reconnectDelayMs: 100, fastIoFailMs: 1000 } });
  try {
    const { ch } = f;
    assert.equal(await writeBlocks(ch, 0, pattern(4096, 3)), BDEV_OK);
    await f.server.stop();
    const t0 = Date.now();
    const r = await readBlocks(ch, 0, 8);
    const took = Date.now() - t0;
    assert.equal(r.status, BDEV_EIO);
    assert.ok(took >= 900 && took < 10_000, `failed after ${took} ms`);
    // Without a server new I/O fails at once.
    assert.equal((await readBlocks(ch, 0, 8)).status, BDEV_EIO);
    await f.server.start();
    // The next attempts reconnect (each I/O that fails meanwhile may start one).
    const deadline = Date.now() + 10_000;
    let back: { status: number; data: Uint8Array };
    do {
      back = await readBlocks(ch, 0, 8);
      if (back.status === BDEV_OK) break;
      await sleep(50);
    } while (Date.now() < deadline);
    assert.equal(back.status, BDEV_OK);
    assert.deepEqual(back.data, pattern(4096, 3));
  } finally {
    await f.close();
  }
});

test('nbd channel: an idle connection the server closed is noticed by polling, and the next I/O reconnects', async () => {
  const f = await fixture({ kind: 'nbdkit' });
  try {
    const { ch, bdev } = f;
    assert.equal(await writeBlocks(ch, 0, pattern(4096, 5)), BDEV_OK);
    assert.equal(bdev.connectionState().state, 'connected');
    await f.server.kill();
    // An idle channel reads its socket once per 65,536 polls.
    for (let i = 0; i < 70_000 && bdev.connectionState().state === 'connected'; i++) ch.poll();
    assert.equal(bdev.connectionState().state, 'disconnected');
    assert.equal(bdev.connectionState().connection_losses, 1);
    await f.server.start();
    // nbdkit's memory plugin starts empty: zeroes, through a new connection.
    const r = await readBlocks(ch, 0, 8);
    assert.equal(r.status, BDEV_OK);
    assert.deepEqual(r.data, new Uint8Array(4096));
    assert.equal(bdev.connectionState().connects, 2);
  } finally {
    await f.close();
  }
});
