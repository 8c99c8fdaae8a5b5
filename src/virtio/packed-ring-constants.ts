// Packed-ring constants, named as in the OASIS virtio specification (v1.2, packed-ring.tex).

/** Descriptor flag bits of the packed ring (beside NEXT, WRITE, INDIRECT of the split ring). */
export const VIRTQ_DESC_F_AVAIL = 1 << 7;
export const VIRTQ_DESC_F_USED = 1 << 15;

/** struct pvirtq_event_suppress.flags (desc_event_flags, 2 bits). */
export const RING_EVENT_FLAGS_ENABLE = 0x0;
export const RING_EVENT_FLAGS_DISABLE = 0x1;
/** Events for one descriptor (desc_event_off / desc_event_wrap); only with VIRTIO_F_EVENT_IDX. */
export const RING_EVENT_FLAGS_DESC = 0x2;
export const RING_EVENT_FLAGS_MASK = 0x3;

/** desc_event_wrap / the wrap bit of vhost-user's packed ring base: bit 15 of a 16-bit index. */
export const PACKED_WRAP_BIT = 0x8000;
export const PACKED_INDEX_MASK = 0x7fff;

/** Packed virtqueues hold up to 2^15 descriptors; the size need not be a power of two. */
export const VIRTQ_PACKED_MAX_SIZE = 32768;
/** sizeof(struct pvirtq_desc). */
export const PVIRTQ_DESC_SIZE = 16;
/** Alignment and size of the parts (descriptor ring; driver and device event suppression). */
export const PVIRTQ_DESC_ALIGN = 16;
export const PVIRTQ_EVENT_ALIGN = 4;
export const PVIRTQ_EVENT_SIZE = 4;
