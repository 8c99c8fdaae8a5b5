// Typed errors of the NVMe/TCP initiator: a stable code and the errno the RPC layer reports.
export type NvmeErrorCode =
  | 'NVME_CONNECT_FAILED'
  | 'NVME_CONNECT_REFUSED'
  | 'NVME_PROTOCOL'
  | 'NVME_TIMEOUT'
  | 'NVME_NOT_CONNECTED'
  | 'NVME_CONNECTION_LOST'
  | 'NVME_COMMAND_FAILED'
  | 'NVME_CONTROLLER_EXISTS'
  | 'NVME_CONTROLLER_NOT_FOUND'
  | 'NVME_NO_NAMESPACES'
  | 'NVME_UNSUPPORTED'
  | 'NVME_INVALID_PARAM';

export class NvmeError extends Error {
  readonly code: NvmeErrorCode;
  readonly errno: number;
  constructor(code: NvmeErrorCode, message: string, errno: number) {
    super(message);
    this.name = 'NvmeError';
    this.code = code;
    this.errno = errno;
  }
}
