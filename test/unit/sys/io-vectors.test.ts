// IoVectorTable.fromSegments: the one place a raw address reaches the kernel. It must write exactly
// the validated pieces, and refuse (-1: bounce instead) anything it cannot vouch for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IoVectorTable, IOVECS_PER_SLOT, BOUNCE_CHUNK } from '../../../src/sys/io-vectors.ts';
import { viewOf } from '../../../src/sys/memory.ts';
import { SgList } from '../../../src/iovec/sg-list.ts';

/** The slot's first n iovecs as [base, len] pairs. */
function iovecs(t: IoVectorTable, slot: number, n: number): [number, number][] {
  const v = new BigUint64Array(viewOf(BigInt(t.iovAddr(slot)), n * 16));
  const out: [number, number][] = [];
  for (let i = 0; i < n; i++) out.push([Number(v[2 * i]), Number(v[2 * i + 1])]);
  return out;
}

function list(entries: [number, number, number][], bufLen = 1 << 20): SgList {
  const sg = new SgList(Math.max(entries.length, 1));
  const buf = new Uint8Array(bufLen);
  for (const [off, len, addr] of entries) sg.push(buf, off, len, addr);
  return sg;
}

test('fromSegments writes one iovec per piece, skipping `from` bytes and stopping at len', () => {
  const t = new IoVectorTable(4);
  try {
    const base = 0x7f00_0000_0000; // above 2^32: both halves of the address matter
    const sg = list([
      [0, 1000, base],
      [4096, 3000, base + 0x10_0000],
      [8192, 5000, base + 0x20_0000],
    ]);
    assert.equal(t.fromSegments(2, sg, 0, 9000, 1, 1), 3);
    assert.deepEqual(iovecs(t, 2, 3), [
      [base, 1000],
      [base + 0x10_0000, 3000],
      [base + 0x20_0000, 5000],
    ]);
    // Start 1500 bytes in (500 into the second entry), take 4000 bytes.
    assert.equal(t.fromSegments(1, sg, 1500, 4000, 1, 1), 2);
    assert.deepEqual(iovecs(t, 1, 2), [
      [base + 0x10_0000 + 500, 2500],
      [base + 0x20_0000, 1500],
    ]);
    // Slot 2 is untouched by slot 1's call.
    assert.deepEqual(iovecs(t, 2, 1), [[base, 1000]]);
  } finally {
    t.close();
  }
});

test('fromSegments refuses what it cannot hand to the kernel', () => {
  const t = new IoVectorTable(2);
  try {
    const a = 0x5555_0000_0000;
    assert.equal(t.fromSegments(0, list([[0, 512, 0]]), 0, 512, 1, 1), -1, 'no host address');
    assert.equal(t.fromSegments(0, list([[0, 512, 0.5]]), 0, 512, 1, 1), -1, 'fractional address');
    assert.equal(t.fromSegments(0, list([[0, 512, a]]), 0, 1024, 1, 1), -1, 'list shorter than len');
    assert.equal(t.fromSegments(0, list([[1000, 512, a]], 1024), 0, 512, 1, 1), -1, 'entry past the end of its own buffer');
    assert.equal(t.fromSegments(0, list([[0, 512, a]]), 0, 0, 1, 1), -1, 'empty transfer');
    assert.equal(t.fromSegments(2, list([[0, 512, a]]), 0, 512, 1, 1), -1, 'slot out of range');
    assert.equal(t.fromSegments(-1, list([[0, 512, a]]), 0, 512, 1, 1), -1, 'negative slot');
    // O_DIRECT alignment.
    assert.equal(t.fromSegments(0, list([[0, 512, a + 8]]), 0, 512, 512, 512), -1, 'misaligned address');
    assert.equal(t.fromSegments(0, list([[0, 1024, a]]), 0, 1000, 512, 512), -1, 'length not a multiple of 512');
    assert.equal(t.fromSegments(0, list([[0, 1024, a]]), 100, 512, 512, 512), -1, 'from breaks the alignment');
    assert.equal(t.fromSegments(0, list([[0, 1024, a], [0, 1024, a + 4096]]), 0, 2048, 512, 512), 2, 'aligned pieces pass');
    assert.equal(t.fromSegments(0, list([[0, 1024, a], [0, 1024, a + 4096]]), 0, 2048, 512, 4096), -1, 'piece shorter than lenAlign');
    // Too many pieces for the slot's array.
    const many: [number, number, number][] = [];
    for (let i = 0; i <= IOVECS_PER_SLOT; i++) many.push([i * 512, 512, a + i * 512]);
    assert.equal(t.fromSegments(1, list(many), 0, many.length * 512, 1, 1), -1);
    assert.equal(t.fromSegments(1, list(many), 0, IOVECS_PER_SLOT * 512, 1, 1), IOVECS_PER_SLOT);
  } finally {
    t.close();
  }
});

test('bounce and zero buffers are page-aligned, per slot, and capped at BOUNCE_CHUNK', () => {
  const t = new IoVectorTable(3);
  try {
    assert.equal(t.bounce(1, 10_000), 1);
    const [[b1, l1]] = iovecs(t, 1, 1);
    assert.equal(b1 % 4096, 0);
    assert.equal(l1, 10_000);
    t.bounce(2, BOUNCE_CHUNK * 3);
    const [[b2, l2]] = iovecs(t, 2, 1);
    assert.equal(b2 - b1, BOUNCE_CHUNK);
    assert.equal(l2, BOUNCE_CHUNK);
    const v = t.bounceView(1);
    assert.equal(v.length, BOUNCE_CHUNK);
    v[0] = 42;
    assert.equal(new Uint8Array(viewOf(BigInt(b1), 1))[0], 42, 'bounceView is the memory the iovec points at');
    assert.equal(t.zeroes(0, 512), 1);
    const [[z, zl]] = iovecs(t, 0, 1);
    assert.equal(zl, 512);
    assert.ok(new Uint8Array(viewOf(BigInt(z), BOUNCE_CHUNK)).every((x) => x === 0));
  } finally {
    t.close();
  }
  assert.equal(t.bounce(0, 512), 0, 'closed table hands out nothing');
  assert.equal(t.fromSegments(0, list([[0, 512, 0x1000]]), 0, 512, 1, 1), -1);
});

/** Reference model: the pieces [addr, len] of bytes [from, from+len) of the entries, or null. */
function model(entries: { off: number; len: number; addr: number; bufLen: number }[], from: number, len: number, memAlign: number, lenAlign: number): [number, number][] | null {
  const out: [number, number][] = [];
  let skip = from;
  let done = 0;
  for (const e of entries) {
    if (done >= len) break;
    if (skip >= e.len) {
      skip -= e.len;
      continue;
    }
    if (!(e.addr > 0) || !Number.isSafeInteger(e.addr) || e.off + e.len > e.bufLen) return null;
    const piece = Math.min(e.len - skip, len - done);
    const addr = e.addr + skip;
    if (memAlign > 1 && (addr % memAlign !== 0 || piece % lenAlign !== 0)) return null;
    if (out.length === IOVECS_PER_SLOT) return null;
    out.push([addr, piece]);
    done += piece;
    skip = 0;
  }
  return done === len && len > 0 ? out : null;
}

test('fromSegments matches a reference model on 20000 random lists (fuzz)', () => {
  let seed = 0x9e3779b9;
  const rnd = (n: number): number => {
    seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return seed % n;
  };
  const t = new IoVectorTable(2);
  let accepted = 0;
  try {
    for (let iter = 0; iter < 20000; iter++) {
      const count = 1 + rnd(rnd(10) === 0 ? 80 : 6);
      const sg = new SgList(count);
      const entries: { off: number; len: number; addr: number; bufLen: number }[] = [];
      for (let i = 0; i < count; i++) {
        const bufLen = 4096 + rnd(8192);
        const len = rnd(4) === 0 ? 512 * (1 + rnd(8)) : 1 + rnd(4096);
        const off = rnd(20) === 0 ? bufLen - rnd(64) : rnd(Math.max(1, bufLen - len));
        const kindOfAddr = rnd(30);
        const addr = kindOfAddr === 0 ? 0 : kindOfAddr === 1 ? 2 ** 53 + 2 : 0x7f00_0000_0000 + rnd(1 << 20) * 512 + (rnd(4) === 0 ? rnd(512) : 0);
        sg.push(new Uint8Array(bufLen), off, len, addr);
        entries.push({ off, len, addr, bufLen });
      }
      const total = entries.reduce((a, e) => a + e.len, 0);
      const from = rnd(3) === 0 ? 0 : rnd(total + 10);
      const len = rnd(5) === 0 ? total - from + rnd(3) : rnd(Math.max(1, total - from + 1));
      const [memAlign, lenAlign] = rnd(2) === 0 ? [1, 1] : [512, rnd(2) === 0 ? 512 : 4096];
      const expect = model(entries, from, len, memAlign, lenAlign);
      const got = t.fromSegments(iter & 1, sg, from, len, memAlign, lenAlign);
      if (expect === null) {
        assert.equal(got, -1, `iteration ${iter}: should refuse`);
      } else {
        accepted++;
        assert.equal(got, expect.length, `iteration ${iter}: iovec count`);
        assert.deepEqual(iovecs(t, iter & 1, got), expect, `iteration ${iter}: iovecs`);
      }
    }
  } finally {
    t.close();
  }
  // Both outcomes are exercised in bulk.
  assert.ok(accepted > 3000 && accepted < 17000, `${accepted} of 20000 accepted`);
});
