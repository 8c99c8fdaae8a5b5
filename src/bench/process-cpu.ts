// CPU time of a process from /proc/<pid>/stat (utime + stime), for the target's usage.
import { readFileSync } from 'node:fs';

const CLK_TCK = 100;

/** Seconds of CPU the process used so far (all threads), or NaN when it cannot be read. */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}
