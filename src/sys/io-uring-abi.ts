// The io_uring kernel ABI (include/uapi/linux/io_uring.h, x86-64): syscall numbers, setup and
// enter flags, opcodes, and the byte offsets of struct io_uring_params, io_uring_sqe and
// io_uring_cqe. Pure data, so the engine reads like the header it follows.

export const __NR_io_uring_setup = 425;
export const __NR_io_uring_enter = 426;
export const __NR_io_uring_register = 427;

/** mmap offsets of the three shared regions. */
export const IORING_OFF_SQ_RING = 0;
export const IORING_OFF_CQ_RING = 0x8000000;
export const IORING_OFF_SQES = 0x10000000;

// io_uring_params.flags
export const IORING_SETUP_CQSIZE = 1 << 3;
export const IORING_SETUP_CLAMP = 1 << 4;
export const IORING_SETUP_SUBMIT_ALL = 1 << 7;
export const IORING_SETUP_COOP_TASKRUN = 1 << 8;
export const IORING_SETUP_TASKRUN_FLAG = 1 << 9;

// io_uring_params.features
export const IORING_FEAT_SINGLE_MMAP = 1 << 0;
export const IORING_FEAT_NODROP = 1 << 1;
export const IORING_FEAT_SUBMIT_STABLE = 1 << 2;

// io_uring_enter flags
export const IORING_ENTER_GETEVENTS = 1 << 0;

// SQ ring flags (kernel -> application)
export const IORING_SQ_NEED_WAKEUP = 1 << 0;
export const IORING_SQ_CQ_OVERFLOW = 1 << 1;
/** With TASKRUN_FLAG: completions wait in task work until the ring's task enters the kernel. */
export const IORING_SQ_TASKRUN = 1 << 2;

// CQ ring flags (application -> kernel)
export const IORING_CQ_EVENTFD_DISABLED = 1 << 0;

// io_uring_register opcodes
export const IORING_REGISTER_EVENTFD = 4;
export const IORING_UNREGISTER_EVENTFD = 5;
export const IORING_REGISTER_PROBE = 8;

// Opcodes (enum io_uring_op)
export const IORING_OP_NOP = 0;
export const IORING_OP_READV = 1;
export const IORING_OP_WRITEV = 2;
export const IORING_OP_FSYNC = 3;
export const IORING_OP_FALLOCATE = 17;

/** Every opcode the block engine issues, with its name for error messages. */
export const IORING_REQUIRED_OPS: readonly (readonly [number, string])[] = [
  [IORING_OP_READV, 'IORING_OP_READV'],
  [IORING_OP_WRITEV, 'IORING_OP_WRITEV'],
  [IORING_OP_FSYNC, 'IORING_OP_FSYNC'],
  [IORING_OP_FALLOCATE, 'IORING_OP_FALLOCATE'],
];

// struct io_uring_probe { u8 last_op; u8 ops_len; u16 resv; u32 resv2[3]; struct io_uring_probe_op ops[]; }
// struct io_uring_probe_op { u8 op; u8 resv; u16 flags; u32 resv2; }
export const IO_URING_PROBE_HEADER = 16;
export const IO_URING_PROBE_OP_SIZE = 8;
export const IO_URING_OP_SUPPORTED = 1 << 0;

/** sizeof(struct io_uring_params) and its field offsets. */
export const IO_URING_PARAMS_SIZE = 120;
export const PARAMS_SQ_ENTRIES = 0;
export const PARAMS_CQ_ENTRIES = 4;
export const PARAMS_FLAGS = 8;
export const PARAMS_FEATURES = 20;
/** struct io_sqring_offsets sq_off: head, tail, ring_mask, ring_entries, flags, dropped, array (u32 each). */
export const PARAMS_SQ_OFF = 40;
/** struct io_cqring_offsets cq_off: head, tail, ring_mask, ring_entries, overflow, cqes, flags (u32 each). */
export const PARAMS_CQ_OFF = 80;
export const SQ_OFF_HEAD = 0;
export const SQ_OFF_TAIL = 4;
export const SQ_OFF_RING_MASK = 8;
export const SQ_OFF_RING_ENTRIES = 12;
export const SQ_OFF_FLAGS = 16;
export const SQ_OFF_DROPPED = 20;
export const SQ_OFF_ARRAY = 24;
export const CQ_OFF_HEAD = 0;
export const CQ_OFF_TAIL = 4;
export const CQ_OFF_RING_MASK = 8;
export const CQ_OFF_RING_ENTRIES = 12;
export const CQ_OFF_OVERFLOW = 16;
export const CQ_OFF_CQES = 20;
export const CQ_OFF_FLAGS = 24;

/** struct io_uring_sqe: 64 bytes. Offsets in bytes. */
export const SQE_SIZE = 64;
export const SQE_OPCODE = 0; // u8
export const SQE_FLAGS = 1; // u8
export const SQE_IOPRIO = 2; // u16
export const SQE_FD = 4; // s32
export const SQE_OFF = 8; // u64 (file offset)
export const SQE_ADDR = 16; // u64 (iovec array, or fallocate length)
export const SQE_LEN = 24; // u32 (iovec count, or fallocate mode)
export const SQE_OP_FLAGS = 28; // u32 (rw_flags / fsync_flags)
export const SQE_USER_DATA = 32; // u64

/** struct io_uring_cqe: 16 bytes. */
export const CQE_SIZE = 16;
export const CQE_USER_DATA = 0; // u64
export const CQE_RES = 8; // s32
export const CQE_FLAGS = 12; // u32

/** Fsync flags. */
export const IORING_FSYNC_DATASYNC = 1 << 0;

/** Upper bound of entries the kernel accepts (IORING_MAX_ENTRIES). */
export const IORING_MAX_ENTRIES = 32768;
