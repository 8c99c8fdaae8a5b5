// Typed errors of the RBD bdev module: a stable code, and the errno librados/librbd returned
// (the RPC layer reports that errno, as SPDK does).
import { errnoName } from '../../sys/errno.ts';

export type RbdErrorCode =
  | 'RBD_CONNECT_FAILED'
  | 'RBD_INVALID_CONFIG'
  | 'RBD_CLUSTER_EXISTS'
  | 'RBD_CLUSTER_NOT_FOUND'
  | 'RBD_CLUSTER_BUSY'
  | 'RBD_POOL_NOT_FOUND'
  | 'RBD_OPEN_FAILED'
  | 'RBD_RESIZE_FAILED'
  | 'RBD_CHANNELS_EXHAUSTED';

const ENOENT = 2;
const EINVAL = 22;
const EEXIST = 17;
const EBUSY = 16;

const DEFAULT_ERRNO: Record<RbdErrorCode, number> = {
  RBD_CONNECT_FAILED: 110,
  RBD_INVALID_CONFIG: EINVAL,
  RBD_CLUSTER_EXISTS: EEXIST,
  RBD_CLUSTER_NOT_FOUND: ENOENT,
  RBD_CLUSTER_BUSY: EBUSY,
  RBD_POOL_NOT_FOUND: ENOENT,
  RBD_OPEN_FAILED: ENOENT,
  RBD_RESIZE_FAILED: EINVAL,
  RBD_CHANNELS_EXHAUSTED: EBUSY,
};

export class RbdError extends Error {
  readonly code: RbdErrorCode;
  readonly errno: number;
  constructor(code: RbdErrorCode, message: string, errno?: number) {
    super(message);
    this.name = 'RbdError';
    this.code = code;
    this.errno = errno ?? DEFAULT_ERRNO[code];
  }
}

/** An error for librados/librbd's negative return `ret`, naming the errno. */
export function rbdCallError(code: RbdErrorCode, ret: number, what: string): RbdError {
  const errno = -ret;
  return new RbdError(code, `${what}: ${errnoName(errno)} (${errno})`, errno);
}
