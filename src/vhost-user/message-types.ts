// vhost-user request ids, header flags, feature bits and limits, with the names of QEMU's
// docs/interop/vhost-user.rst (the back-end channel uses the newer BACKEND names for SLAVE).

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
export const VHOST_USER_SEND_RARP = 19;
export const VHOST_USER_NET_SET_MTU = 20;
export const VHOST_USER_SET_BACKEND_REQ_FD = 21;
export const VHOST_USER_IOTLB_MSG = 22;
export const VHOST_USER_SET_VRING_ENDIAN = 23;
export const VHOST_USER_GET_CONFIG = 24;
export const VHOST_USER_SET_CONFIG = 25;
export const VHOST_USER_CREATE_CRYPTO_SESSION = 26;
export const VHOST_USER_CLOSE_CRYPTO_SESSION = 27;
export const VHOST_USER_POSTCOPY_ADVISE = 28;
export const VHOST_USER_POSTCOPY_LISTEN = 29;
export const VHOST_USER_POSTCOPY_END = 30;
export const VHOST_USER_GET_INFLIGHT_FD = 31;
export const VHOST_USER_SET_INFLIGHT_FD = 32;
export const VHOST_USER_GPU_SET_SOCKET = 33;
export const VHOST_USER_RESET_DEVICE = 34;
export const VHOST_USER_VRING_KICK = 35;
export const VHOST_USER_GET_MAX_MEM_SLOTS = 36;
export const VHOST_USER_ADD_MEM_REG = 37;
export const VHOST_USER_REM_MEM_REG = 38;
export const VHOST_USER_SET_STATUS = 39;
export const VHOST_USER_GET_STATUS = 40;

// Back-end -> front-end requests (on the SET_BACKEND_REQ_FD socket).
export const VHOST_USER_BACKEND_IOTLB_MSG = 1;
export const VHOST_USER_BACKEND_CONFIG_CHANGE_MSG = 2;
export const VHOST_USER_BACKEND_VRING_HOST_NOTIFIER_MSG = 3;
export const VHOST_USER_BACKEND_VRING_CALL = 4;
export const VHOST_USER_BACKEND_VRING_ERR = 5;

const requestNames: Record<number, string> = {
  1: 'GET_FEATURES',
  2: 'SET_FEATURES',
  3: 'SET_OWNER',
  4: 'RESET_OWNER',
  5: 'SET_MEM_TABLE',
  6: 'SET_LOG_BASE',
  7: 'SET_LOG_FD',
  8: 'SET_VRING_NUM',
  9: 'SET_VRING_ADDR',
  10: 'SET_VRING_BASE',
  11: 'GET_VRING_BASE',
  12: 'SET_VRING_KICK',
  13: 'SET_VRING_CALL',
  14: 'SET_VRING_ERR',
  15: 'GET_PROTOCOL_FEATURES',
  16: 'SET_PROTOCOL_FEATURES',
  17: 'GET_QUEUE_NUM',
  18: 'SET_VRING_ENABLE',
  19: 'SEND_RARP',
  20: 'NET_SET_MTU',
  21: 'SET_BACKEND_REQ_FD',
  22: 'IOTLB_MSG',
  23: 'SET_VRING_ENDIAN',
  24: 'GET_CONFIG',
  25: 'SET_CONFIG',
  26: 'CREATE_CRYPTO_SESSION',
  27: 'CLOSE_CRYPTO_SESSION',
  28: 'POSTCOPY_ADVISE',
  29: 'POSTCOPY_LISTEN',
  30: 'POSTCOPY_END',
  31: 'GET_INFLIGHT_FD',
  32: 'SET_INFLIGHT_FD',
  33: 'GPU_SET_SOCKET',
  34: 'RESET_DEVICE',
  35: 'VRING_KICK',
  36: 'GET_MAX_MEM_SLOTS',
  37: 'ADD_MEM_REG',
  38: 'REM_MEM_REG',
  39: 'SET_STATUS',
  40: 'GET_STATUS',
};

/** The spec's name of a front-end request id ("REQUEST_<id>" for ids the spec does not define here). */
export function requestName(request: number): string {
  return requestNames[request] ?? `REQUEST_${request}`;
}

export function isKnownRequest(request: number): boolean {
  return requestNames[request] !== undefined;
}

/** Requests the back-end answers whatever REPLY_ACK says (QEMU blocks reading the reply). */
export function hasMandatoryReply(request: number): boolean {
  switch (request) {
    case VHOST_USER_GET_FEATURES:
    case VHOST_USER_GET_PROTOCOL_FEATURES:
    case VHOST_USER_GET_QUEUE_NUM:
    case VHOST_USER_GET_VRING_BASE:
    case VHOST_USER_GET_CONFIG:
    case VHOST_USER_GET_INFLIGHT_FD:
    case VHOST_USER_GET_MAX_MEM_SLOTS:
    case VHOST_USER_GET_STATUS:
      return true;
    default:
      return false;
  }
}

// Header.
export const VHOST_USER_HDR_SIZE = 12;
export const VHOST_USER_VERSION = 0x1;
export const VHOST_USER_VERSION_MASK = 0x3;
export const VHOST_USER_REPLY_MASK = 0x1 << 2;
export const VHOST_USER_NEED_REPLY_MASK = 0x1 << 3;
/** Flags of every back-end reply: version 1 + REPLY, never NEED_REPLY (QEMU checks for exactly 0x5). */
export const VHOST_USER_REPLY_FLAGS = VHOST_USER_VERSION | VHOST_USER_REPLY_MASK;
/** Largest payload accepted; the biggest real one is GET_CONFIG's 12 + 256 bytes. */
export const VHOST_USER_MAX_PAYLOAD_SIZE = 4096;

// SET_VRING_KICK / CALL / ERR u64 payload.
export const VHOST_USER_VRING_IDX_MASK = 0xff;
export const VHOST_USER_VRING_NOFD_MASK = 0x1 << 8;

// SET_VRING_ADDR flags.
export const VHOST_VRING_F_LOG = 0;

// Limits.
export const VHOST_MEMORY_MAX_NREGIONS = 8;
/** GET_MAX_MEM_SLOTS answer (libvhost-user's VHOST_USER_MAX_RAM_SLOTS; QEMU caps to its own 512). */
export const VHOST_USER_MAX_RAM_SLOTS = 509;
export const VHOST_USER_MAX_CONFIG_SIZE = 256;
export const VHOST_USER_CONFIG_HDR_SIZE = 12;
/** Ring indexes travel in 8 bits in SET_VRING_KICK/CALL/ERR, so no more rings can be addressed. */
export const VHOST_USER_MAX_VRINGS = 256;

// Virtio feature bits the vhost-user layer itself cares about.
export const VHOST_USER_F_PROTOCOL_FEATURES = 30;
export const VHOST_F_LOG_ALL = 26;
export const VIRTIO_F_VERSION_1 = 32;
export const VIRTIO_F_RING_PACKED = 34;
/**
 * Bit 2 (virtio-scsi's CHANGE): QEMU's vhost-user-scsi acks it to the back-end whether offered
 * or not, so SET_FEATURES must accept it.
 */
export const VHOST_USER_ACCEPTED_UNOFFERED_BIT = 2;

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

/** bit -> mask as a bigint (feature words are u64). */
export function bit(n: number): bigint {
  return 1n << BigInt(n);
}

/** Protocol features this layer implements; what is offered is this AND the device's set. */
export const IMPLEMENTED_PROTOCOL_FEATURES: bigint =
  bit(VHOST_USER_PROTOCOL_F_MQ) |
  bit(VHOST_USER_PROTOCOL_F_REPLY_ACK) |
  bit(VHOST_USER_PROTOCOL_F_BACKEND_REQ) |
  bit(VHOST_USER_PROTOCOL_F_CONFIG) |
  bit(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD) |
  bit(VHOST_USER_PROTOCOL_F_RESET_DEVICE) |
  bit(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS) |
  bit(VHOST_USER_PROTOCOL_F_STATUS);
