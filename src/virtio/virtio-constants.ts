// Split-ring and feature constants, named as in the OASIS virtio specification (v1.2, content.tex).

/** Descriptor flags (struct virtq_desc.flags). */
export const VIRTQ_DESC_F_NEXT = 1;
export const VIRTQ_DESC_F_WRITE = 2;
export const VIRTQ_DESC_F_INDIRECT = 4;

/** avail.flags: the driver asks not to be interrupted (only without EVENT_IDX). */
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
/** used.flags: the device asks not to be kicked (only without EVENT_IDX). */
export const VIRTQ_USED_F_NO_NOTIFY = 1;

/** Largest split queue size (queue sizes are powers of two up to this). */
export const VIRTQ_MAX_SIZE = 32768;
/** sizeof(struct virtq_desc). */
export const VIRTQ_DESC_SIZE = 16;
/** Ring alignment (split virtqueue, virtio 1.x). */
export const VIRTQ_DESC_ALIGN = 16;
export const VIRTQ_AVAIL_ALIGN = 2;
export const VIRTQ_USED_ALIGN = 4;

/** Feature bit numbers. */
export const VIRTIO_F_INDIRECT_DESC = 28;
export const VIRTIO_F_EVENT_IDX = 29;
export const VIRTIO_F_VERSION_1 = 32;
export const VIRTIO_F_ACCESS_PLATFORM = 33;
export const VIRTIO_F_RING_PACKED = 34;
export const VIRTIO_F_IN_ORDER = 35;
/** The same ring bits under their Linux/QEMU header names. */
export const VIRTIO_RING_F_INDIRECT_DESC = VIRTIO_F_INDIRECT_DESC;
export const VIRTIO_RING_F_EVENT_IDX = VIRTIO_F_EVENT_IDX;

/** Bytes of the avail ring: flags, idx, ring[size], then used_event (present with EVENT_IDX). */
export function availRingBytes(size: number, eventIdx: boolean): number {
  return 4 + 2 * size + (eventIdx ? 2 : 0);
}

/** Bytes of the used ring: flags, idx, {id, len}[size], then avail_event (present with EVENT_IDX). */
export function usedRingBytes(size: number, eventIdx: boolean): number {
  return 4 + 8 * size + (eventIdx ? 2 : 0);
}

/**
 * vring_need_event(): with EVENT_IDX, true when moving the index from `oldIdx` to `newIdx` crossed
 * `eventIdx` (all free-running u16), i.e. the other side asked to be notified at that point.
 */
export function vringNeedEvent(eventIdx: number, newIdx: number, oldIdx: number): boolean {
  return ((newIdx - eventIdx - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
}
