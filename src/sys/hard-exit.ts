// Ends the process at once, without exit handlers or C++ static destructors: for a process whose
// native libraries (librados) still have threads blocked on a peer that is gone, where a normal
// exit would wait for them.
import { c } from './libc.ts';

export function hardExit(code: number): never {
  c._exit(code);
  throw new Error('_exit returned');
}
