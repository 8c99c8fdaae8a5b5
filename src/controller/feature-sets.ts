// Feature bits every vhostd device offers.
const VIRTIO_F_VERSION_1 = 32n;
const VIRTIO_RING_F_INDIRECT_DESC = 28n;
const VIRTIO_RING_F_EVENT_IDX = 29n;

export const RING_FEATURES = (1n << VIRTIO_F_VERSION_1) | (1n << VIRTIO_RING_F_INDIRECT_DESC) | (1n << VIRTIO_RING_F_EVENT_IDX);

/** MQ 0, REPLY_ACK 3, BACKEND_REQ 5, CONFIG 9, INFLIGHT_SHMFD 12, RESET_DEVICE 13, CONFIGURE_MEM_SLOTS 15, STATUS 16. */
export const STORAGE_PROTOCOL_FEATURES = (1n << 0n) | (1n << 3n) | (1n << 5n) | (1n << 9n) | (1n << 12n) | (1n << 13n) | (1n << 15n) | (1n << 16n);

/** VIRTIO_F_RING_PACKED (34): packed virtqueues. */
export const VIRTIO_F_RING_PACKED_BIT = 1n << 34n;
