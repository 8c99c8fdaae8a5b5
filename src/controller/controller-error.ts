// Controller errors carry SPDK-like errno codes so the RPC layer can map them.
export class ControllerError extends Error {
  /** Stable code, e.g. 'CONTROLLER_EXISTS'. */
  readonly code: string;
  /** Negative errno as SPDK reports it in JSON-RPC errors. */
  readonly errno: number;
  constructor(code: string, errno: number, message: string) {
    super(message);
    this.code = code;
    this.errno = errno;
  }
}

export const ENOENT = -2;
export const EEXIST = -17;
export const EBUSY = -16;
export const EINVAL = -22;
export const ENODEV = -19;
