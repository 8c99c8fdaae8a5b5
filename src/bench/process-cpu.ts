// CPU time from /proc (utime + stime): of a whole process, or of its threads with a given name
// prefix (vhostd's reactors are named reactor-N).
import { readdirSync, readFileSync } from 'node:fs';

const CLK_TCK = 100;

/** utime + stime of a /proc stat file, in seconds (fields after the command name, which may hold spaces). */
function statCpuSeconds(statPath: string): number {
  const stat = readFileSync(statPath, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

/** Seconds of CPU the process used so far (all threads), or NaN when it cannot be read. */
export function processCpuSeconds(pid: number): number {
  try {
    return statCpuSeconds(`/proc/${pid}/stat`);
  } catch {
    return NaN;
  }
}

/** Seconds of CPU used by the process's threads whose name starts with `prefix`. */
export function threadsCpuSeconds(pid: number, prefix: string): number {
  let total = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    if (!readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').startsWith(prefix)) continue;
    total += statCpuSeconds(`/proc/${pid}/task/${tid}/stat`);
  }
  return total;
}
