// What an lvol bdev's control plane (src/lvol/lvol-bdev.ts) and its reactor channels
// (lvol-channel.ts) share: control words in a SharedArrayBuffer, and the messages they exchange on
// a BroadcastChannel named after the lvol (any thread may open it by name, nothing is transferred).
//
// Quiesce protocol (a Dekker pair on sequentially consistent atomics): a channel adds 1 to
// INFLIGHT, then reads FROZEN; the control plane stores FROZEN = 1, then waits for INFLIGHT == 0.
// At least one side sees the other, so no I/O starts after the control plane saw zero. A channel
// holds its one unit while it has I/O in flight (taken by the first request, given back by a poll
// that finds none), and while holding it reads FROZEN once per poll and stops admitting I/O when
// set. Channels park I/O while FROZEN is set or their map is older than GENERATION; GENERATION
// only moves while the lvol is quiesced.
import type { BdevChannelSpec } from '../bdev.ts';
import type { ClusterMapSpec } from '../../blob/cluster-map.ts';

export const LVOL_MODULE = 'lvol';

export const CTL_FROZEN = 0;
export const CTL_GENERATION = 1;
export const CTL_INFLIGHT = 2;
export const CTL_WORDS = 4;

export function lvolBroadcastName(uuid: string): string {
  return `vhostd.lvol.${uuid}`;
}

/** channelSpec() of an lvol bdev: structured-cloneable (SharedArrayBuffers are shared, not copied). */
export interface LvolChannelSpec extends BdevChannelSpec {
  module: 'lvol';
  uuid: string;
  base: BdevChannelSpec;
  map: ClusterMapSpec;
  /** GENERATION of `map`. */
  generation: number;
  control: SharedArrayBuffer;
  readOnly: boolean;
}

/** Channel -> control plane: allocate these blob clusters (first write). */
export interface LvolAllocRequest {
  kind: 'alloc';
  clusters: number[];
}

/** Control plane -> channels: the map chain changed (snapshot, resize, merge...). */
export interface LvolMapUpdate {
  kind: 'map';
  generation: number;
  map: ClusterMapSpec;
  numBlocks: number;
  readOnly: boolean;
}

/** Control plane -> channels: these clusters could not be allocated; fail the writes that need them. */
export interface LvolAllocFailure {
  kind: 'alloc-failed';
  clusters: number[];
  /** Negative errno (BDEV_ENOSPC, BDEV_EIO). */
  status: number;
}

export type LvolMessage = LvolAllocRequest | LvolMapUpdate | LvolAllocFailure;
