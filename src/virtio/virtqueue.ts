// The surface a device uses to drive one virtqueue, whatever its layout: split (SplitVirtqueue) or
// packed (PackedVirtqueue, VIRTIO_F_RING_PACKED). Data-path methods never throw on guest input: a
// ring the guest broke sets `error`, after which pop() returns false until the ring is set up again.
import type { GuestMemory } from './guest-memory.ts';
import type { DescriptorChain } from './descriptor-chain.ts';
import type { VirtqueueError } from './virtqueue-error.ts';

export interface Virtqueue {
  /** Queue size: descriptors in the ring. */
  readonly size: number;
  /**
   * Position of the next chain to pop, as vhost-user SET/GET_VRING_BASE carry it. Split: the
   * free-running u16 avail index. Packed: bits 0-14 the descriptor ring index, bit 15 the driver
   * ring wrap counter.
   */
  readonly lastAvailIdx: number;
  /**
   * The value to answer GET_VRING_BASE with once the ring is stopped. Split: lastAvailIdx. Packed:
   * lastAvailIdx | usedIdx << 16 (used index and device wrap counter in bits 16-30 and 31), the
   * form QEMU stores and sends back with SET_VRING_BASE.
   */
  readonly vringBase: number;
  /** Set once the ring is broken (first violation kept). */
  readonly error: VirtqueueError | null;
  /**
   * Whether chains are waiting. Split: how many. Packed: 1 when at least one is, else 0 (a count
   * would mean walking every chain). 0 when broken.
   */
  available(): number;
  /** Pops the next validated chain into `chain` (reset first). False when empty or broken. */
  pop(chain: DescriptorChain): boolean;
  /**
   * Completes a popped chain with `len` bytes written to its device-writable part. Uses chain.id
   * (and, packed, chain.descCount), so call it before the chain object is reused. Visible to the
   * driver at the latest after the next flushUsed(). Throws RangeError only for a chain this queue
   * did not hand out (a device bug).
   */
  pushUsed(chain: DescriptorChain, len: number): void;
  /** Publishes what was pushed; true when the driver asked to be notified (signal the call fd). */
  flushUsed(): boolean;
  /** Asks the driver not to kick (the device is polling). */
  disableNotifications(): void;
  /**
   * Asks the driver to kick again, then re-checks the ring. True = work arrived meanwhile (keep
   * polling: its kick may never come); false = safe to sleep on the kick fd, or broken.
   */
  enableNotifications(): boolean;
  /** The memory table was replaced: re-map the rings (throws VirtqueueError RING_NOT_MAPPED, queue broken). */
  rebind(memory: GuestMemory): void;
}
