// Packed ring event suppression, both directions: used buffer notifications to the driver
// (flushUsed() reading the driver's structure) and kicks from the driver (enable/disable writing
// the device's structure, checked with Linux's virtqueue_kick_prepare_packed logic).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PackedVirtqueue } from '../../../src/virtio/packed-virtqueue.ts';
import { DescriptorChain } from '../../../src/virtio/descriptor-chain.ts';
import { VIRTQ_DESC_F_NEXT as NEXT } from '../../../src/virtio/virtio-constants.ts';
import { RING_EVENT_FLAGS_DESC as DESC, RING_EVENT_FLAGS_DISABLE as DISABLE, RING_EVENT_FLAGS_ENABLE as ENABLE } from '../../../src/virtio/packed-ring-constants.ts';
import { GuestAccess, makeMemory, makeRegions } from './virtq-driver.ts';
import { PackedTestDriver, PRING8 } from './packed-driver.ts';

function setup(eventIdx: boolean, pos = 0x8000) {
  const regions = makeRegions();
  const g = new GuestAccess(regions);
  const drv = new PackedTestDriver(g, PRING8);
  drv.nextAvail = drv.nextUsed = pos & 0x7fff;
  drv.availWrap = drv.usedWrap = pos >>> 15;
  const vq = new PackedVirtqueue(makeMemory(regions), { ...PRING8, lastAvailIdx: pos, eventIdx, indirect: false });
  return { drv, vq };
}

let nextId = 0;

/** Offers chains of the given descriptor counts, pops and completes them all, drains them on the driver side; returns flushUsed(). */
function complete(drv: PackedTestDriver, vq: PackedVirtqueue, ...descCounts: number[]): boolean {
  const chains: DescriptorChain[] = [];
  for (const n of descCounts) drv.add(Array.from({ length: n }, (_, k) => ({ addr: 0x4000 + 16 * k, len: 16 })), nextId++ & 0xffff);
  for (let k = 0; k < descCounts.length; k++) {
    const c = new DescriptorChain(8);
    assert.equal(vq.pop(c), true, vq.error?.message);
    chains.push(c);
  }
  for (const c of chains) vq.pushUsed(c, 0);
  for (let k = 0; k < descCounts.length; k++) assert.notEqual(drv.getUsed(), null);
  return vq.flushUsed();
}

test('used notifications without EVENT_IDX: ENABLE yes, DISABLE no, DESC and the reserved value fall back to yes', () => {
  const { drv, vq } = setup(false);
  assert.equal(vq.flushUsed(), false, 'nothing pushed');
  drv.setDriverEvent(ENABLE);
  assert.equal(complete(drv, vq, 1), true);
  assert.equal(vq.flushUsed(), false, 'nothing pushed since');
  drv.setDriverEvent(DISABLE);
  assert.equal(complete(drv, vq, 2), false);
  assert.equal(vq.flushUsed(), false, 'the suppressed batch is not notified later');
  drv.setDriverEvent(DESC, 0x8000 | 7); // DESC is only valid with EVENT_IDX: over-notify rather than lose one
  assert.equal(complete(drv, vq, 1), true);
  drv.setDriverEvent(3);
  assert.equal(complete(drv, vq, 1), true);
  drv.setDriverEvent(DISABLE | 0xfffc); // reserved upper flag bits are ignored
  assert.equal(complete(drv, vq, 1), false);
});

test('with EVENT_IDX: the first flush notifies, then only when the used position passes desc_event_off/wrap', () => {
  const { drv, vq } = setup(true);
  drv.setDriverEvent(DESC, 0x8000 | 5);
  assert.equal(complete(drv, vq, 1), true, 'first flush: what the driver saw before is unknown');
  // Linux virtqueue_enable_cb_prepare_packed: notify at the next used descriptor (slot 1).
  drv.enableCbAtNextUsed();
  assert.equal(complete(drv, vq, 1), true);
  assert.equal(complete(drv, vq, 1), false, 'slot 1 already passed; the driver did not re-arm');
  // Linux virtqueue_enable_cb_delayed_packed with 3 buffers: the 4th completion notifies.
  drv.enableCbDelayed(3); // next used is slot 3: event at slot 6
  assert.equal(complete(drv, vq, 1), false);
  assert.equal(complete(drv, vq, 1), false);
  assert.equal(complete(drv, vq, 1), false);
  assert.equal(complete(drv, vq, 1), true);
  assert.equal(drv.nextUsed, 7);
});

test('with EVENT_IDX: an event inside a multi-descriptor chain, and a batch flushed at once', () => {
  const { drv, vq } = setup(true);
  drv.setDriverEvent(DISABLE);
  assert.equal(complete(drv, vq, 1), false); // validates the flush point (slot 0 used -> position 1)
  drv.setDriverEvent(DESC, 0x8000 | 2);
  assert.equal(complete(drv, vq, 3), true, 'slots 1-3 used by one chain: slot 2 is inside it');
  drv.setDriverEvent(DESC, 0x8000 | 7);
  assert.equal(complete(drv, vq, 2), false, 'slots 4-5');
  assert.equal(complete(drv, vq, 1, 1), true, 'slots 6 and 7 in one flush');
});

test('with EVENT_IDX: events across the ring wrap use the wrap counter', () => {
  const { drv, vq } = setup(true, 0x8006); // slot 6 of the first lap
  drv.setDriverEvent(ENABLE);
  assert.equal(complete(drv, vq, 1), true);
  drv.setDriverEvent(DESC, 0x0001); // slot 1 of the next lap (wrap 0)
  assert.equal(complete(drv, vq, 1), false, 'slot 7');
  assert.equal(vq.usedIdx, 0x0000);
  assert.equal(complete(drv, vq, 1), false, 'slot 0, lap 2');
  assert.equal(complete(drv, vq, 1), true, 'slot 1, lap 2');
  // The same offset with the other wrap bit is a lap away: not reached by the next few.
  drv.setDriverEvent(DESC, 0x8000 | 3);
  assert.equal(complete(drv, vq, 2), false, 'slots 2-3 of lap 2 (wrap 0)');
  assert.equal(complete(drv, vq, 4), false, 'slots 4-7');
  assert.equal(complete(drv, vq, 3), false, 'slots 0-2 of lap 3 (wrap 1)');
  assert.equal(complete(drv, vq, 1), true, 'slot 3 of lap 3');
});

test('with EVENT_IDX: more than two laps between flushes always notify; a nonsense offset notifies', () => {
  const { drv, vq } = setup(true);
  drv.setDriverEvent(ENABLE);
  assert.equal(complete(drv, vq, 1), true);
  drv.setDriverEvent(DESC, 0x8000 | 0);
  const c = new DescriptorChain(1);
  for (let k = 0; k < 17; k++) {
    drv.add([{ addr: 0x4000, len: 4 }], k);
    assert.equal(vq.pop(c), true);
    vq.pushUsed(c, 0);
    assert.notEqual(drv.getUsed(), null);
  }
  assert.equal(vq.flushUsed(), true);
  drv.setDriverEvent(DESC, 0x8000 | 0x7fff);
  assert.equal(complete(drv, vq, 1), true);
});

test('kicks without EVENT_IDX: disable writes DISABLE, enable writes ENABLE and re-checks the ring', () => {
  const { drv, vq } = setup(false);
  vq.disableNotifications();
  assert.equal(drv.deviceEventFlags(), DISABLE);
  drv.add([{ addr: 0x4000, len: 4 }], 1);
  assert.equal(drv.kickPrepare(), false, 'the driver does not kick');
  assert.equal(vq.enableNotifications(), true, 'work arrived while kicks were off');
  assert.equal(drv.deviceEventFlags(), ENABLE);
  const c = new DescriptorChain(1);
  assert.equal(vq.pop(c), true);
  assert.equal(vq.enableNotifications(), false);
  drv.add([{ addr: 0x4000, len: 4 }], 2);
  drv.add([{ addr: 0x4000, len: 4 }], 3);
  assert.equal(drv.kickPrepare(), true);
});

test('kicks with EVENT_IDX: enable asks for a kick at the next avail position (with its wrap counter)', () => {
  const { drv, vq } = setup(true, 0x8007);
  assert.equal(vq.enableNotifications(), false);
  assert.equal(drv.deviceEventFlags(), DESC);
  assert.equal(drv.deviceEventOffWrap(), 0x8007);
  drv.add([{ addr: 0x4000, len: 4 }, { addr: 0x4100, len: 4 }], 1); // slots 7, 0 (wrap flips)
  assert.equal(drv.kickPrepare(), true, 'slot 7 was made available');
  drv.add([{ addr: 0x4000, len: 4 }], 2); // slot 1
  assert.equal(drv.kickPrepare(), false, 'no second kick until the device re-arms');
  assert.equal(vq.enableNotifications(), true, 'work is waiting');
  const c = new DescriptorChain(2);
  assert.equal(vq.pop(c), true);
  assert.equal(vq.pop(c), true);
  assert.equal(vq.enableNotifications(), false);
  assert.equal(drv.deviceEventOffWrap(), 0x0002, 'slot 2 of the second lap (wrap 0)');
  drv.add([{ addr: 0x4000, len: 4 }], 3);
  assert.equal(drv.kickPrepare(), true);
  vq.disableNotifications();
  assert.equal(drv.deviceEventFlags(), DISABLE);
  drv.add([{ addr: 0x4000, len: 4 }], 4);
  assert.equal(drv.kickPrepare(), false);
});

test('a broken queue never asks for kicks and reports nothing available', () => {
  const { drv, vq } = setup(true);
  drv.put(1, 0x4000, 4, 0, 0); // not available
  drv.put(0, 0x4000, 4, 0, NEXT | 0x80);
  const c = new DescriptorChain(2);
  assert.equal(vq.pop(c), false);
  assert.equal(vq.error?.code, 'NEXT_OUT_OF_RANGE');
  assert.equal(vq.enableNotifications(), false);
  assert.equal(vq.available(), 0);
});
