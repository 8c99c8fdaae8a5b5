// errno -> typed errors. The code (e.g. 'EAGAIN') is the stable identifier callers test.
import koffi from 'koffi';

const names = new Map<number, string>();
for (const [name, value] of Object.entries(koffi.os.errno)) {
  if (!names.has(value)) names.set(value, name);
}

export function errnoName(errno: number): string {
  return names.get(errno) ?? `E${errno}`;
}

export class SysError extends Error {
  readonly code: string;
  readonly errno: number;
  readonly syscall: string;
  constructor(syscall: string, errno: number, detail?: string) {
    const code = errnoName(errno);
    super(`${syscall} failed: ${code} (${errno})${detail ? ': ' + detail : ''}`);
    this.name = 'SysError';
    this.code = code;
    this.errno = errno;
    this.syscall = syscall;
  }
}

/** Reads errno right after a failed call and throws it as a SysError. */
export function throwErrno(syscall: string, detail?: string): never {
  throw new SysError(syscall, koffi.errno(), detail);
}

export function lastErrno(): number {
  return koffi.errno();
}

export const EAGAIN = koffi.os.errno.EAGAIN ?? 11;
export const EINTR = koffi.os.errno.EINTR ?? 4;
export const EPERM = koffi.os.errno.EPERM ?? 1;
export const EACCES = koffi.os.errno.EACCES ?? 13;
