// vhost-user wire constants as the front-end sees them (names follow QEMU's vhost-user.rst).
// Kept separate from src/vhost-user/ on purpose: an independent front-end catches the back-end's bugs.

export const VHOST_USER_HEADER_SIZE = 12;
export const VHOST_USER_VERSION = 0x1;
export const VHOST_USER_REPLY_MASK = 0x4;
export const VHOST_USER_NEED_REPLY_MASK = 0x8;
/** The only flags value a reply may carry. */
export const VHOST_USER_REPLY_FLAGS = VHOST_USER_VERSION | VHOST_USER_REPLY_MASK;
/** Largest payload this front-end accepts from a peer (the protocol's own messages are far smaller). */
export const VHOST_USER_MAX_PAYLOAD = 4096;
export const VHOST_MEMORY_BASELINE_NREGIONS = 8;

// Front-end -> back-end requests.
export const VHOST_USER_GET_FEATURES = 1;
export const VHOST_USER_SET_FEATURES = 2;
export const VHOST_USER_SET_OWNER = 3;
export const VHOST_USER_RESET_OWNER = 4;
export const VHOST_USER_SET_MEM_TABLE = 5;
export const VHOST_USER_SET_LOG_BASE = 6;
export const VHOST_USER_SET_LOG_FD = 7;
export const VHOST_USER_SET_VRING_NUM = 8;
export const VHOST_USER_SET_VRING_ADDR = 9;
export const VHOST_USER_SET_VRING_BASE = 10;
export const VHOST_USER_GET_VRING_BASE = 11;
export const VHOST_USER_SET_VRING_KICK = 12;
export const VHOST_USER_SET_VRING_CALL = 13;
export const VHOST_USER_SET_VRING_ERR = 14;
export const VHOST_USER_GET_PROTOCOL_FEATURES = 15;
export const VHOST_USER_SET_PROTOCOL_FEATURES = 16;
export const VHOST_USER_GET_QUEUE_NUM = 17;
export const VHOST_USER_SET_VRING_ENABLE = 18;
export const VHOST_USER_SET_BACKEND_REQ_FD = 21;
export const VHOST_USER_GET_CONFIG = 24;
export const VHOST_USER_SET_CONFIG = 25;
export const VHOST_USER_GET_INFLIGHT_FD = 31;
export const VHOST_USER_SET_INFLIGHT_FD = 32;
export const VHOST_USER_RESET_DEVICE = 34;
export const VHOST_USER_GET_MAX_MEM_SLOTS = 36;
export const VHOST_USER_ADD_MEM_REG = 37;
export const VHOST_USER_REM_MEM_REG = 38;
export const VHOST_USER_SET_STATUS = 39;
export const VHOST_USER_GET_STATUS = 40;

// Back-end -> front-end requests (on the BACKEND_REQ socket).
export const VHOST_USER_BACKEND_IOTLB_MSG = 1;
export const VHOST_USER_BACKEND_CONFIG_CHANGE_MSG = 2;
export const VHOST_USER_BACKEND_VRING_HOST_NOTIFIER_MSG = 3;

// SET_VRING_KICK/CALL/ERR payload: ring index in bits 0-7, bit 8 = no fd.
export const VHOST_USER_VRING_IDX_MASK = 0xff;
export const VHOST_USER_VRING_NOFD_MASK = 0x100;

// SET_VRING_ADDR flags.
export const VHOST_VRING_F_LOG = 0;

// Protocol feature bits.
export const VHOST_USER_PROTOCOL_F_MQ = 0;
export const VHOST_USER_PROTOCOL_F_LOG_SHMFD = 1;
export const VHOST_USER_PROTOCOL_F_RARP = 2;
export const VHOST_USER_PROTOCOL_F_REPLY_ACK = 3;
export const VHOST_USER_PROTOCOL_F_MTU = 4;
export const VHOST_USER_PROTOCOL_F_BACKEND_REQ = 5;
export const VHOST_USER_PROTOCOL_F_CROSS_ENDIAN = 6;
export const VHOST_USER_PROTOCOL_F_CRYPTO_SESSION = 7;
export const VHOST_USER_PROTOCOL_F_PAGEFAULT = 8;
export const VHOST_USER_PROTOCOL_F_CONFIG = 9;
export const VHOST_USER_PROTOCOL_F_BACKEND_SEND_FD = 10;
export const VHOST_USER_PROTOCOL_F_HOST_NOTIFIER = 11;
export const VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD = 12;
export const VHOST_USER_PROTOCOL_F_RESET_DEVICE = 13;
export const VHOST_USER_PROTOCOL_F_INBAND_NOTIFICATIONS = 14;
export const VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS = 15;
export const VHOST_USER_PROTOCOL_F_STATUS = 16;

// Virtio feature bits the front-end negotiates.
export const VIRTIO_F_NOTIFY_ON_EMPTY = 24;
export const VHOST_F_LOG_ALL = 26;
export const VIRTIO_RING_F_INDIRECT_DESC = 28;
export const VIRTIO_RING_F_EVENT_IDX = 29;
export const VHOST_USER_F_PROTOCOL_FEATURES = 30;
export const VIRTIO_F_VERSION_1 = 32;
export const VIRTIO_F_ACCESS_PLATFORM = 33;
export const VIRTIO_F_RING_PACKED = 34;
export const VIRTIO_F_IN_ORDER = 35;
export const VIRTIO_F_NOTIFICATION_DATA = 38;
export const VIRTIO_F_RING_RESET = 40;

// Virtio device status bits (SET_STATUS / GET_STATUS).
export const VIRTIO_CONFIG_S_ACKNOWLEDGE = 1;
export const VIRTIO_CONFIG_S_DRIVER = 2;
export const VIRTIO_CONFIG_S_DRIVER_OK = 4;
export const VIRTIO_CONFIG_S_FEATURES_OK = 8;

/** 1n << bit, for building feature masks. */
export function bit(n: number): bigint {
  return 1n << BigInt(n);
}

export function hasBit(mask: bigint, n: number): boolean {
  return (mask & bit(n)) !== 0n;
}

const NAMES: Record<number, string> = {
  1: 'GET_FEATURES', 2: 'SET_FEATURES', 3: 'SET_OWNER', 4: 'RESET_OWNER', 5: 'SET_MEM_TABLE',
  6: 'SET_LOG_BASE', 7: 'SET_LOG_FD', 8: 'SET_VRING_NUM', 9: 'SET_VRING_ADDR', 10: 'SET_VRING_BASE',
  11: 'GET_VRING_BASE', 12: 'SET_VRING_KICK', 13: 'SET_VRING_CALL', 14: 'SET_VRING_ERR',
  15: 'GET_PROTOCOL_FEATURES', 16: 'SET_PROTOCOL_FEATURES', 17: 'GET_QUEUE_NUM', 18: 'SET_VRING_ENABLE',
  21: 'SET_BACKEND_REQ_FD', 24: 'GET_CONFIG', 25: 'SET_CONFIG', 31: 'GET_INFLIGHT_FD', 32: 'SET_INFLIGHT_FD',
  34: 'RESET_DEVICE', 36: 'GET_MAX_MEM_SLOTS', 37: 'ADD_MEM_REG', 38: 'REM_MEM_REG', 39: 'SET_STATUS', 40: 'GET_STATUS',
};

/** Request name for messages and errors ("SET_MEM_TABLE(5)"). */
export function requestName(request: number): string {
  return `${NAMES[request] ?? 'UNKNOWN'}(${request})`;
}
