// The home control queue of a virtio-scsi device spread over reactors: a TMF is relayed with a
// token and completed by relayDone; a stale or repeated token finds nothing; a reset drops relayed
// requests without writing to the ring and gives their slots back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ScsiControlQueue } from '../../../src/devices/virtio-scsi/control-queue.ts';
import type { ScsiTargetSet } from '../../../src/devices/virtio-scsi/target-set.ts';
import type { ScsiTmfRelay } from '../../../src/devices/virtio-scsi/tmf-dispatch.ts';
import type { Virtqueue } from '../../../src/virtio/virtqueue.ts';
import type { DescriptorChain } from '../../../src/virtio/descriptor-chain.ts';
import {
  VIRTIO_SCSI_S_FAILURE,
  VIRTIO_SCSI_S_FUNCTION_COMPLETE,
  VIRTIO_SCSI_S_FUNCTION_SUCCEEDED,
  VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET,
  VIRTIO_SCSI_T_TMF_QUERY_TASK,
  VIRTIO_SCSI_TMF_REQ_SIZE,
} from '../../../src/devices/virtio-scsi/virtio-scsi-constants.ts';
import { SCSI_TMF_FUNCTION_COMPLETE, SCSI_TMF_FUNCTION_SUCCEEDED } from '../../../src/scsi/scsi-constants.ts';

interface Pending {
  req: Uint8Array;
  resp: Uint8Array;
}

/** A ring holding whole requests: pop fills the chain, pushUsed records what was answered. */
class FakeRing {
  pending: Pending[] = [];
  used: { resp: Uint8Array; len: number }[] = [];
  private readonly inFlight = new Map<DescriptorChain, Uint8Array>();

  tmf(subtype: number, target: number, lun: number, tag: number): Uint8Array {
    const req = new Uint8Array(VIRTIO_SCSI_TMF_REQ_SIZE);
    const v = new DataView(req.buffer);
    v.setUint32(0, 0, true); // VIRTIO_SCSI_T_TMF
    v.setUint32(4, subtype, true);
    req[8] = 1;
    req[9] = target;
    req[10] = 0x40 | (lun >> 8);
    req[11] = lun & 0xff;
    v.setUint32(16, tag, true);
    const resp = new Uint8Array(1).fill(0xee);
    this.pending.push({ req, resp });
    return resp;
  }

  asVirtqueue(): Virtqueue {
    return {
      pop: (chain: DescriptorChain): boolean => {
        const p = this.pending.shift();
        if (!p) return false;
        chain.reset();
        chain.out.push(p.req, 0, p.req.length);
        chain.in.push(p.resp, 0, p.resp.length);
        this.inFlight.set(chain, p.resp);
        return true;
      },
      pushUsed: (chain: DescriptorChain, len: number): void => {
        this.used.push({ resp: this.inFlight.get(chain)!, len });
        this.inFlight.delete(chain);
      },
    } as unknown as Virtqueue;
  }
}

function setup() {
  const relayed: { token: number; subtype: number; target: number; lun: number; tagLo: number }[] = [];
  const relay: ScsiTmfRelay = { relayTmf: (token, subtype, target, lun, tagLo) => relayed.push({ token, subtype, target, lun, tagLo }) };
  const targets = { get: (n: number) => (n === 3 ? {} : undefined), has: (n: number) => n === 3 } as unknown as ScsiTargetSet;
  const dirty: number[] = [];
  const q = new ScsiControlQueue(0, targets, (i) => dirty.push(i), relay);
  const ring = new FakeRing();
  q.attach(ring.asVirtqueue());
  return { q, ring, relayed, dirty };
}

test('a relayed TMF is answered once by its token; a repeated or unknown token finds nothing', () => {
  const { q, ring, relayed } = setup();
  const reset = ring.tmf(VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET, 3, 0, 0);
  const query = ring.tmf(VIRTIO_SCSI_T_TMF_QUERY_TASK, 3, 0, 77);
  assert.equal(q.process(), 2);
  assert.deepEqual(relayed.map((r) => [r.subtype, r.target, r.lun, r.tagLo]), [[VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET, 3, 0, 0], [VIRTIO_SCSI_T_TMF_QUERY_TASK, 3, 0, 77]]);
  assert.notEqual(relayed[0].token, relayed[1].token);
  assert.equal(q.inflight(), 2);
  assert.equal(ring.used.length, 0, 'nothing answered before the control plane answers');

  // Answers may come back in any order.
  assert.equal(q.relayDone(relayed[1].token, SCSI_TMF_FUNCTION_SUCCEEDED, false), true);
  assert.equal(query[0], VIRTIO_SCSI_S_FUNCTION_SUCCEEDED);
  assert.equal(q.relayDone(relayed[0].token, SCSI_TMF_FUNCTION_COMPLETE, false), true);
  assert.equal(reset[0], VIRTIO_SCSI_S_FUNCTION_COMPLETE);
  assert.deepEqual(ring.used.map((u) => u.len), [1, 1]);
  assert.equal(q.inflight(), 0);

  assert.equal(q.relayDone(relayed[0].token, SCSI_TMF_FUNCTION_COMPLETE, false), false, 'a token answers once');
  assert.equal(q.relayDone(12345, SCSI_TMF_FUNCTION_COMPLETE, false), false, 'an unknown token');
  assert.equal(ring.used.length, 2, 'no second completion');
});

test('a reactor that could not run the TMF makes it a FAILURE; a TMF for a missing target is not relayed', () => {
  const { q, ring, relayed } = setup();
  const resp = ring.tmf(VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET, 3, 0, 0);
  const missing = ring.tmf(VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET, 4, 0, 0);
  q.process();
  assert.equal(relayed.length, 1);
  assert.notEqual(missing[0], 0xee, 'answered at once (BAD_TARGET)');
  assert.equal(q.relayDone(relayed[0].token, SCSI_TMF_FUNCTION_COMPLETE, true), true);
  assert.equal(resp[0], VIRTIO_SCSI_S_FAILURE);
});

test('a reset drops relayed TMFs without touching the ring, late answers are ignored, no slot leaks', () => {
  const { q, ring, relayed } = setup();
  for (let i = 0; i < 64; i++) ring.tmf(VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET, 3, 0, 0);
  assert.equal(q.process(), 64);
  assert.equal(q.inflight(), 64);
  ring.tmf(VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET, 3, 0, 0);
  assert.equal(q.process(), 0, 'every control slot is taken');

  q.dropRelayed();
  assert.equal(q.inflight(), 0);
  assert.equal(ring.used.length, 0, 'nothing written into the ring');
  for (const r of relayed) assert.equal(q.relayDone(r.token, SCSI_TMF_FUNCTION_COMPLETE, false), false);
  assert.equal(ring.used.length, 0);

  // The slots are free again: the waiting request and 63 more are taken.
  for (let i = 0; i < 63; i++) ring.tmf(VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET, 3, 0, 0);
  assert.equal(q.process(), 64);
  const fresh = relayed.slice(64);
  assert.equal(fresh.length, 64);
  assert.ok(fresh.every((r) => !relayed.slice(0, 64).some((o) => o.token === r.token)), 'new tokens, never reused');
});
