// Typed errors of the SCSI layer's control-plane API (bad configuration, bad LUN ids). The data
// path never throws: it answers the initiator with status and sense instead.

export class ScsiConfigError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'ScsiConfigError';
    this.code = code;
  }
}
