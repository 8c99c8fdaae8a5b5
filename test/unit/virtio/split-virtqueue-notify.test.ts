// Notification decisions: interrupts to the driver (flushUsed) and kicks from it (enable/disable).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SplitVirtqueue } from '../../../src/virtio/split-virtqueue.ts';
import { DescriptorChain } from '../../../src/virtio/descriptor-chain.ts';
import { vringNeedEvent, VIRTQ_AVAIL_F_NO_INTERRUPT, VIRTQ_USED_F_NO_NOTIFY } from '../../../src/virtio/virtio-constants.ts';
import { GuestAccess, makeMemory, makeRegions, RING8, TestDriver } from './virtq-driver.ts';

function setup(eventIdx: boolean, usedIdx = 0, lastAvailIdx = 0) {
  const regions = makeRegions();
  const g = new GuestAccess(regions);
  const drv = new TestDriver(g, RING8);
  drv.setUsedIdx(usedIdx);
  drv.setAvailIdx(lastAvailIdx);
  for (let h = 0; h < 8; h++) drv.desc(h, 0x4000 + 16 * h, 16, 0);
  const vq = new SplitVirtqueue(makeMemory(regions), { ...RING8, lastAvailIdx, eventIdx, indirect: false });
  return { drv, vq };
}

/** Completes `n` requests (offered and popped first) and returns flushUsed()'s answer. */
function complete(drv: TestDriver, vq: SplitVirtqueue, n: number): boolean {
  const chain = new DescriptorChain(1);
  for (let k = 0; k < n; k++) drv.offer(k % 8);
  for (let k = 0; k < n; k++) {
    assert.equal(vq.pop(chain), true);
    vq.pushUsed(chain.head, 16);
  }
  return vq.flushUsed();
}

test('vring_need_event: notify exactly when the new index passes the event index', () => {
  assert.equal(vringNeedEvent(5, 6, 5), true); // event 5 in [5, 6)
  assert.equal(vringNeedEvent(5, 5, 4), false); // in [4, 5)? no
  assert.equal(vringNeedEvent(5, 10, 4), true);
  assert.equal(vringNeedEvent(10, 10, 4), false);
  assert.equal(vringNeedEvent(0xffff, 1, 0xfffe), true); // across the wrap
  assert.equal(vringNeedEvent(1, 1, 0xfffe), false);
  assert.equal(vringNeedEvent(0, 1, 0xffff), true);
});

test('without EVENT_IDX: notify unless the driver set NO_INTERRUPT', () => {
  const { drv, vq } = setup(false);
  assert.equal(vq.flushUsed(), false, 'nothing pushed: no publish, no notify');
  assert.equal(complete(drv, vq, 2), true);
  assert.equal(drv.usedIdx(), 2);
  drv.setAvailFlags(VIRTQ_AVAIL_F_NO_INTERRUPT);
  assert.equal(complete(drv, vq, 1), false);
  assert.equal(drv.usedIdx(), 3, 'published even when not notifying');
  drv.setAvailFlags(0);
  assert.equal(complete(drv, vq, 1), true);
});

test('with EVENT_IDX: notify when used.idx passes used_event, across the u16 wrap', () => {
  const { drv, vq } = setup(true, 0xfffc, 0xfffc);
  drv.setUsedEvent(0xfff0);
  // The first flush always notifies: what the driver saw before this device took over is unknown.
  assert.equal(complete(drv, vq, 1), true);
  assert.equal(drv.usedIdx(), 0xfffd);
  drv.setUsedEvent(0xfffe); // the driver wants an interrupt once used entry 0xfffe is there
  assert.equal(complete(drv, vq, 1), false); // idx 0xfffe: entry 0xfffe not yet used
  assert.equal(complete(drv, vq, 1), true); // idx 0xffff
  assert.equal(complete(drv, vq, 2), false); // idx 1
  drv.setUsedEvent(2);
  assert.equal(complete(drv, vq, 3), true); // 1 -> 4 passes 2
  assert.equal(drv.usedIdx(), 4);
  // NO_INTERRUPT is ignored with EVENT_IDX.
  drv.setAvailFlags(VIRTQ_AVAIL_F_NO_INTERRUPT);
  drv.setUsedEvent(4);
  assert.equal(complete(drv, vq, 1), true);
});

test('without EVENT_IDX: disable sets NO_NOTIFY, enable clears it and re-checks avail', () => {
  const { drv, vq } = setup(false);
  vq.disableNotifications();
  assert.equal(drv.usedFlags(), VIRTQ_USED_F_NO_NOTIFY);
  assert.equal(vq.enableNotifications(), false);
  assert.equal(drv.usedFlags(), 0);
  vq.disableNotifications();
  assert.equal(drv.usedFlags(), VIRTQ_USED_F_NO_NOTIFY);
  drv.offer(3); // arrives while kicks are off: no kick will come for it
  assert.equal(vq.enableNotifications(), true);
  assert.equal(drv.usedFlags(), 0);
  const chain = new DescriptorChain(1);
  assert.equal(vq.pop(chain), true);
  assert.equal(chain.head, 3);
  assert.equal(vq.enableNotifications(), false);
});

test('with EVENT_IDX: enable writes avail_event = last avail idx, disable leaves used.flags alone', () => {
  const { drv, vq } = setup(true, 0, 0xfffe);
  assert.equal(vq.enableNotifications(), false);
  assert.equal(drv.availEvent(), 0xfffe);
  vq.disableNotifications();
  assert.equal(drv.usedFlags(), 0);
  drv.offer(1);
  drv.offer(2);
  drv.offer(4);
  assert.equal(drv.availEvent(), 0xfffe, 'avail_event stops moving while disabled');
  assert.equal(vq.enableNotifications(), true, 'work arrived meanwhile');
  const chain = new DescriptorChain(1);
  const heads: number[] = [];
  while (vq.pop(chain)) heads.push(chain.head);
  assert.deepEqual(heads, [1, 2, 4]);
  assert.equal(vq.enableNotifications(), false);
  assert.equal(drv.availEvent(), 1);
});
