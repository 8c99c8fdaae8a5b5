// JSON-RPC errors. RpcError carries a stable string `code` (what callers test), the numeric
// JSON-RPC code sent on the wire, and optional data. Domain errors (bdev, controller) become
// SPDK's errno-style errors: code -ENODEV, message "No such device", as SPDK's spdk_strerror.

/** JSON-RPC 2.0 codes, with SPDK's names (include/spdk/jsonrpc.h). */
export const SPDK_JSONRPC_ERROR_PARSE_ERROR = -32700;
export const SPDK_JSONRPC_ERROR_INVALID_REQUEST = -32600;
export const SPDK_JSONRPC_ERROR_METHOD_NOT_FOUND = -32601;
export const SPDK_JSONRPC_ERROR_INVALID_PARAMS = -32602;
export const SPDK_JSONRPC_ERROR_INTERNAL_ERROR = -32603;

export const EPERM = 1;
export const ENOENT = 2;
export const EIO = 5;
export const ENXIO = 6;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EBUSY = 16;
export const EEXIST = 17;
export const ENODEV = 19;
export const EINVAL = 22;
export const ENOSPC = 28;
export const EROFS = 30;
export const ERANGE = 34;
export const ENAMETOOLONG = 36;
export const ENOTSUP = 95;
export const EADDRINUSE = 98;
export const ETIMEDOUT = 110;
export const EALREADY = 114;
export const ECANCELED = 125;

/** glibc's strerror() texts, which SPDK sends as error messages. */
const STRERROR: Record<number, string> = {
  [EPERM]: 'Operation not permitted',
  [ENOENT]: 'No such file or directory',
  [EIO]: 'Input/output error',
  [ENXIO]: 'No such device or address',
  [EAGAIN]: 'Resource temporarily unavailable',
  [ENOMEM]: 'Cannot allocate memory',
  [EACCES]: 'Permission denied',
  [EBUSY]: 'Device or resource busy',
  [EEXIST]: 'File exists',
  [ENODEV]: 'No such device',
  [EINVAL]: 'Invalid argument',
  [ENOSPC]: 'No space left on device',
  [EROFS]: 'Read-only file system',
  [ERANGE]: 'Numerical result out of range',
  [ENAMETOOLONG]: 'File name too long',
  [ENOTSUP]: 'Operation not supported',
  [EADDRINUSE]: 'Address already in use',
  [ETIMEDOUT]: 'Connection timed out',
  [EALREADY]: 'Operation already in progress',
  [ECANCELED]: 'Operation canceled',
};

const ERRNO_BY_NAME: Record<string, number> = {
  EPERM, ENOENT, EIO, ENXIO, EAGAIN, ENOMEM, EACCES, EBUSY, EEXIST, ENODEV, EINVAL, ENOSPC, EROFS, ERANGE,
  ENAMETOOLONG, ENOTSUP, EOPNOTSUPP: ENOTSUP, EADDRINUSE, ETIMEDOUT, EALREADY, ECANCELED,
};

export function strerror(errno: number): string {
  return STRERROR[Math.abs(errno)] ?? `Unknown error ${Math.abs(errno)}`;
}

/** Domain error codes (src/bdev, src/controller) -> errno, as SPDK reports the same failures. */
const ERRNO_BY_CODE: Record<string, number> = {
  BDEV_NOT_FOUND: ENODEV,
  BDEV_EXISTS: EEXIST,
  BDEV_CLAIMED: EBUSY,
  BDEV_NOT_CLAIMED: EINVAL,
  BDEV_WRONG_MODULE: ENODEV,
  BDEV_INVALID_PARAM: EINVAL,
  BDEV_NOT_SUPPORTED: ENOTSUP,
  BDEV_NO_MEMORY: ENOMEM,
  BDEV_INVALID_SPEC: EINVAL,
  BDEV_UNKNOWN_MODULE: ENODEV,
  LVOL_NAME_TAKEN: EEXIST,
  LVOL_HAS_CLONES: EBUSY,
  LVOL_READ_ONLY: EPERM,
  LVOL_NOT_READ_ONLY: EINVAL,
  LVOL_NO_PARENT: EINVAL,
  LVOL_WOULD_DROP_DATA: EINVAL,
  LVOL_IO_ERROR: EIO,
};

/** Codes by suffix, for layers whose errors carry no errno (e.g. 'TARGET_NOT_FOUND'). */
const ERRNO_BY_SUFFIX: [RegExp, number][] = [
  [/NOT_FOUND$/, ENODEV],
  [/EXISTS$/, EEXIST],
  [/(BUSY|CLAIMED|IN_USE)$/, EBUSY],
  [/(^BAD_|INVALID)/, EINVAL],
  [/(NOT_SUPPORTED|UNSUPPORTED)$/, ENOTSUP],
  [/(FULL|NO_SPACE)$/, ENOSPC],
];

/** The errno a domain error stands for, or undefined for an unexpected error (a bug). */
export function errnoOf(err: unknown): number | undefined {
  if (err === null || typeof err !== 'object') return undefined;
  const e = err as { code?: unknown; errno?: unknown };
  if (typeof e.errno === 'number' && Number.isInteger(e.errno) && e.errno !== 0) return Math.abs(e.errno);
  if (typeof e.code !== 'string') return undefined;
  const byCode = ERRNO_BY_CODE[e.code] ?? ERRNO_BY_NAME[e.code];
  if (byCode !== undefined) return byCode;
  for (const [re, errno] of ERRNO_BY_SUFFIX) if (re.test(e.code)) return errno;
  return undefined;
}

export type RpcStandardCode =
  | 'RPC_PARSE_ERROR'
  | 'RPC_INVALID_REQUEST'
  | 'RPC_METHOD_NOT_FOUND'
  | 'RPC_INVALID_PARAMS'
  | 'RPC_INTERNAL_ERROR';

export interface JsonRpcErrorObject {
  code: number;
  message: string;
  data?: unknown;
}

export class RpcError extends Error {
  /** Stable identifier: an RpcStandardCode, a domain code ('BDEV_NOT_FOUND'), or a client code ('RPC_TIMEOUT'). */
  readonly code: string;
  /** JSON-RPC error code on the wire. */
  readonly rpcCode: number;
  readonly data: unknown;
  constructor(code: string, rpcCode: number, message: string, data?: unknown) {
    super(message);
    this.name = 'RpcError';
    this.code = code;
    this.rpcCode = rpcCode;
    this.data = data;
  }

  toErrorObject(): JsonRpcErrorObject {
    return this.data === undefined ? { code: this.rpcCode, message: this.message } : { code: this.rpcCode, message: this.message, data: this.data };
  }

  /** The human detail, when the wire message is a bare strerror text. */
  get detail(): string | undefined {
    const d = this.data as { detail?: unknown } | undefined;
    return d && typeof d.detail === 'string' ? d.detail : undefined;
  }

  /** Rebuilds an error received from a server (client side). */
  static fromErrorObject(obj: JsonRpcErrorObject): RpcError {
    const d = obj.data as { code?: unknown } | undefined;
    const code = d && typeof d.code === 'string' ? d.code : standardCodeOf(obj.code);
    return new RpcError(code, obj.code, obj.message, obj.data);
  }
}

function standardCodeOf(rpcCode: number): string {
  switch (rpcCode) {
    case SPDK_JSONRPC_ERROR_PARSE_ERROR: return 'RPC_PARSE_ERROR';
    case SPDK_JSONRPC_ERROR_INVALID_REQUEST: return 'RPC_INVALID_REQUEST';
    case SPDK_JSONRPC_ERROR_METHOD_NOT_FOUND: return 'RPC_METHOD_NOT_FOUND';
    case SPDK_JSONRPC_ERROR_INVALID_PARAMS: return 'RPC_INVALID_PARAMS';
    case SPDK_JSONRPC_ERROR_INTERNAL_ERROR: return 'RPC_INTERNAL_ERROR';
    default: return rpcCode < 0 && rpcCode > -4096 ? `ERRNO_${-rpcCode}` : 'RPC_ERROR';
  }
}

export function parseError(detail: string): RpcError {
  return new RpcError('RPC_PARSE_ERROR', SPDK_JSONRPC_ERROR_PARSE_ERROR, 'Parse error', { code: 'RPC_PARSE_ERROR', detail });
}

export function invalidRequest(detail: string): RpcError {
  return new RpcError('RPC_INVALID_REQUEST', SPDK_JSONRPC_ERROR_INVALID_REQUEST, 'Invalid request', { code: 'RPC_INVALID_REQUEST', detail });
}

export function methodNotFound(method: string): RpcError {
  return new RpcError('RPC_METHOD_NOT_FOUND', SPDK_JSONRPC_ERROR_METHOD_NOT_FOUND, 'Method not found', {
    code: 'RPC_METHOD_NOT_FOUND',
    detail: `no method '${method}' (rpc_get_methods lists them)`,
  });
}

export function invalidParams(detail: string): RpcError {
  return new RpcError('RPC_INVALID_PARAMS', SPDK_JSONRPC_ERROR_INVALID_PARAMS, `Invalid parameters: ${detail}`);
}

/**
 * How a method reports domain errors, as SPDK does for that method: bdev methods send -errno
 * with strerror; vhost methods send -32602 (or -32603 for vhost_get_controllers) with strerror.
 */
export type ErrorStyle = 'errno' | 'invalid-params' | 'internal';

/** Maps anything a handler threw to the RpcError sent to the client. */
export function toRpcError(err: unknown, style: ErrorStyle = 'errno'): RpcError {
  if (err instanceof RpcError) return err;
  const errno = errnoOf(err);
  const e = err as { code?: unknown; message?: unknown } | null;
  const message = e && typeof e.message === 'string' ? e.message : String(err);
  if (errno === undefined) {
    return new RpcError('RPC_INTERNAL_ERROR', SPDK_JSONRPC_ERROR_INTERNAL_ERROR, `Internal error: ${message}`);
  }
  const code = e && typeof e.code === 'string' ? e.code : `ERRNO_${errno}`;
  const rpcCode =
    style === 'invalid-params' ? SPDK_JSONRPC_ERROR_INVALID_PARAMS : style === 'internal' ? SPDK_JSONRPC_ERROR_INTERNAL_ERROR : -errno;
  return new RpcError(code, rpcCode, strerror(errno), { code, detail: message });
}
