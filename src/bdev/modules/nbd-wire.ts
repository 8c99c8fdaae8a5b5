// The NBD protocol's numbers (NetworkBlockDevice/nbd doc/proto.md): magics, options, commands,
// transmission flags and wire errno values, and the mapping of those errors onto bdev statuses.
// Every integer on the wire is big-endian.
import { BDEV_EINVAL, BDEV_EIO, BDEV_ENOMEM, BDEV_ENOSPC, BDEV_ENOTSUP, BDEV_EROFS } from '../bdev.ts';

export const NBD_MAGIC = 0x4e42444d41474943n; // "NBDMAGIC"
export const NBD_IHAVEOPT = 0x49484156454f5054n; // "IHAVEOPT"
export const NBD_OLDSTYLE_MAGIC = 0x0000420281861253n;
export const NBD_OPT_REPLY_MAGIC = 0x0003e889045565a9n;
export const NBD_REQUEST_MAGIC = 0x25609513;
export const NBD_SIMPLE_REPLY_MAGIC = 0x67446698;
export const NBD_STRUCTURED_REPLY_MAGIC = 0x668e33ef;

// Handshake flags (server) and client flags.
export const NBD_FLAG_FIXED_NEWSTYLE = 0x1;
export const NBD_FLAG_NO_ZEROES = 0x2;
export const NBD_FLAG_C_FIXED_NEWSTYLE = 0x1;
export const NBD_FLAG_C_NO_ZEROES = 0x2;

// Options and option replies.
export const NBD_OPT_EXPORT_NAME = 1;
export const NBD_OPT_ABORT = 2;
export const NBD_OPT_GO = 7;
export const NBD_OPT_STRUCTURED_REPLY = 8;
export const NBD_REP_ACK = 1;
export const NBD_REP_INFO = 3;
export const NBD_REP_FLAG_ERROR = 0x80000000;
export const NBD_REP_ERR_UNSUP = 0x80000001;
export const NBD_REP_ERR_POLICY = 0x80000002;
export const NBD_REP_ERR_INVALID = 0x80000003;
export const NBD_REP_ERR_PLATFORM = 0x80000004;
export const NBD_REP_ERR_TLS_REQD = 0x80000005;
export const NBD_REP_ERR_UNKNOWN = 0x80000006;
export const NBD_REP_ERR_SHUTDOWN = 0x80000007;
export const NBD_REP_ERR_BLOCK_SIZE_REQD = 0x80000008;
export const NBD_INFO_EXPORT = 0;
export const NBD_INFO_BLOCK_SIZE = 3;

// Transmission flags.
export const NBD_FLAG_HAS_FLAGS = 0x0001;
export const NBD_FLAG_READ_ONLY = 0x0002;
export const NBD_FLAG_SEND_FLUSH = 0x0004;
export const NBD_FLAG_SEND_FUA = 0x0008;
export const NBD_FLAG_ROTATIONAL = 0x0010;
export const NBD_FLAG_SEND_TRIM = 0x0020;
export const NBD_FLAG_SEND_WRITE_ZEROES = 0x0040;
export const NBD_FLAG_SEND_DF = 0x0080;
export const NBD_FLAG_CAN_MULTI_CONN = 0x0100;

/** Names of the transmission flags, for bdev_get_bdevs. */
export const NBD_TRANSMISSION_FLAG_NAMES: readonly [number, string][] = [
  [NBD_FLAG_READ_ONLY, 'read_only'],
  [NBD_FLAG_SEND_FLUSH, 'flush'],
  [NBD_FLAG_SEND_FUA, 'fua'],
  [NBD_FLAG_ROTATIONAL, 'rotational'],
  [NBD_FLAG_SEND_TRIM, 'trim'],
  [NBD_FLAG_SEND_WRITE_ZEROES, 'write_zeroes'],
  [NBD_FLAG_SEND_DF, 'df'],
  [NBD_FLAG_CAN_MULTI_CONN, 'multi_conn'],
];

// Commands.
export const NBD_CMD_READ = 0;
export const NBD_CMD_WRITE = 1;
export const NBD_CMD_DISC = 2;
export const NBD_CMD_FLUSH = 3;
export const NBD_CMD_TRIM = 4;
export const NBD_CMD_WRITE_ZEROES = 6;
export const NBD_REQUEST_SIZE = 28;
export const NBD_SIMPLE_REPLY_SIZE = 16;
export const NBD_STRUCTURED_HEADER_SIZE = 20;

// Structured reply chunks.
export const NBD_REPLY_FLAG_DONE = 0x1;
export const NBD_REPLY_TYPE_NONE = 0;
export const NBD_REPLY_TYPE_OFFSET_DATA = 1;
export const NBD_REPLY_TYPE_OFFSET_HOLE = 2;
export const NBD_REPLY_TYPE_ERROR_BIT = 0x8000;

// Wire errno values.
export const NBD_EPERM = 1;
export const NBD_EIO = 5;
export const NBD_ENOMEM = 12;
export const NBD_EINVAL = 22;
export const NBD_ENOSPC = 28;
export const NBD_EOVERFLOW = 75;
export const NBD_ENOTSUP = 95;
export const NBD_ESHUTDOWN = 108;

/** Largest payload a server must accept when it states no limit (proto.md "Size constraints"). */
export const NBD_DEFAULT_MAX_PAYLOAD = 32 * 1024 * 1024;
/** Longest export name the protocol allows. */
export const NBD_MAX_NAME = 4096;

/** A server's error for one request as a bdev status (negative errno). */
export function nbdErrorStatus(err: number): number {
  switch (err) {
    case NBD_EPERM:
      return BDEV_EROFS;
    case NBD_ENOSPC:
      return BDEV_ENOSPC;
    case NBD_EINVAL:
    case NBD_EOVERFLOW:
      return BDEV_EINVAL;
    case NBD_ENOTSUP:
      return BDEV_ENOTSUP;
    case NBD_ENOMEM:
      return BDEV_ENOMEM;
    default:
      return BDEV_EIO;
  }
}
