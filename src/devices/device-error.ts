// Errors of device state changes requested by the control plane (stable codes).
export class DeviceError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}
