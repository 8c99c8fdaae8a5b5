// Typed errors for bad vhost-user input. `code` is the stable identifier; the message says what
// was wrong in terms a person reading the log can act on.

export type VhostUserErrorCode =
  // Framing: the byte stream can no longer be trusted, the connection is closed.
  | 'BAD_VERSION'
  | 'BAD_FLAGS'
  | 'PAYLOAD_TOO_LARGE'
  | 'FDS_TRUNCATED'
  // One message is wrong: it fails (failure reply with REPLY_ACK), the connection stays.
  | 'BAD_SIZE'
  | 'UNKNOWN_REQUEST'
  | 'UNSUPPORTED_REQUEST'
  | 'MISSING_FD'
  | 'TOO_MANY_REGIONS'
  | 'BAD_REGION'
  | 'OVERLAPPING_REGIONS'
  | 'BAD_REGION_FD'
  | 'NO_SUCH_REGION'
  | 'BAD_RING_INDEX'
  | 'BAD_RING_SIZE'
  | 'RING_BUSY'
  | 'BAD_VALUE'
  | 'UNSUPPORTED_FEATURES'
  | 'CONFIG_REFUSED'
  | 'BAD_INFLIGHT'
  | 'DEVICE_ERROR';

const framingCodes: ReadonlySet<VhostUserErrorCode> = new Set(['BAD_VERSION', 'BAD_FLAGS', 'PAYLOAD_TOO_LARGE', 'FDS_TRUNCATED']);

export class VhostUserProtocolError extends Error {
  readonly code: VhostUserErrorCode;
  constructor(code: VhostUserErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'VhostUserProtocolError';
    this.code = code;
  }

  /** True when the stream itself is broken and the connection must be closed. */
  get framing(): boolean {
    return framingCodes.has(this.code);
  }
}

/** Awaits a device call, turning its failure into a DEVICE_ERROR that names the device and call. */
export async function deviceCall<R>(device: string, what: string, p: Promise<R>): Promise<R> {
  try {
    return await p;
  } catch (e) {
    throw new VhostUserProtocolError('DEVICE_ERROR', `device ${device}: ${what} failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}
