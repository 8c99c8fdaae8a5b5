// Pins the calling thread to one CPU.
import { c } from './libc.ts';
import { throwErrno } from './errno.ts';

export function pinCurrentThread(cpu: number): void {
  const mask = new Uint8Array(128);
  mask[cpu >> 3] |= 1 << (cpu & 7);
  if (c.sched_setaffinity(0, mask.length, mask) < 0) throwErrno('sched_setaffinity', `cpu ${cpu}`);
}

/** Pins thread `tid` of this process to `cpus`. */
export function pinThread(tid: number, cpus: readonly number[]): void {
  const mask = new Uint8Array(128);
  for (const cpu of cpus) mask[cpu >> 3] |= 1 << (cpu & 7);
  if (c.sched_setaffinity(tid, mask.length, mask) < 0) throwErrno('sched_setaffinity', `thread ${tid}`);
}
