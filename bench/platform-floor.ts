// `npm run bench:floor` (also part of `npm run bench`): what this machine itself costs, measured by
// small C programs (bench/floor/*.c, built with the system's cc) with no vhostd code in the way:
// an empty syscall, a 4 KiB random read from a tmpfs file by pread and by memcpy from a mapping,
// and the wake-up of a thread sleeping in epoll after 1 s of idle. They bound what any target can
// reach here: the adaptive-polling and file-backend figures are read against them.
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pinCurrentThread } from '../src/sys/affinity.ts';
import { createImageFile, removeImageFile } from './image-file.ts';
import { median } from './median.ts';

const ROOT = new URL('../', import.meta.url).pathname;
const SRC = join(ROOT, 'bench/floor');
const OUT = join(ROOT, 'build/floor');

export interface PlatformFloor {
  syscallUs: number;
  preadUs: number;
  mmapCopyUs: number;
  /** Wake-up after 1 s idle, sorted ascending (us). */
  wakeUs: number[];
}

function build(name: string, extra: string[] = []): string | null {
  mkdirSync(OUT, { recursive: true });
  const out = join(OUT, name);
  const r = spawnSync('cc', ['-O2', '-Wall', '-o', out, join(SRC, `${name}.c`), ...extra], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    process.stderr.write(`platform floor: cannot build ${name}: ${r.error?.message ?? r.stderr}\n`);
    return null;
  }
  return out;
}

/** Runs `bin` under taskset on `cpus` (a CPU or a list "0,1"); its output is one number per line. */
function run(bin: string, args: string[], cpus: number | string): number[] {
  const r = spawnSync('taskset', ['-c', String(cpus), bin, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')}: ${r.stderr || r.error?.message}`);
  return r.stdout.trim().split('\n').map(Number);
}

/** Measures on `cpu` (the target's CPU); the wake-up is kicked from `otherCpu`. Null without a C compiler. */
export function measurePlatformFloor(tmpfsDir: string, cpu: number, otherCpu: number, wakeRounds = 10): PlatformFloor | null {
  const fileRead = build('file-read');
  const wake = build('wake-latency', ['-pthread']);
  if (!fileRead || !wake) return null;
  const image = createImageFile(tmpfsDir, `floor-${process.pid}.img`, 1024);
  try {
    const syscallUs = median([1, 2, 3].map(() => run(fileRead, [image, 'syscall', '2000000'], cpu)[0]));
    const preadUs = median([1, 2, 3].map(() => run(fileRead, [image, 'pread', '1000000'], cpu)[0]));
    const mmapCopyUs = median([1, 2, 3].map(() => run(fileRead, [image, 'mmap', '1000000'], cpu)[0]));
    // The kicker runs on otherCpu, the sleeper on cpu; taskset allows both, each thread pins itself.
    const wakeUs = run(wake, [String(cpu), String(otherCpu), '1', String(wakeRounds)], `${cpu},${otherCpu}`).sort((a, b) => a - b);
    return { syscallUs, preadUs, mmapCopyUs, wakeUs };
  } finally {
    removeImageFile(image);
  }
}

export function describeFloor(f: PlatformFloor, cpu: number): string[] {
  const w = f.wakeUs;
  return [
    `Platform floor on CPU ${cpu} (bench/floor/*.c, plain C, no vhostd code; medians of 3 runs):`,
    `an empty syscall (getppid) ${f.syscallUs.toFixed(2)} us; a random 4 KiB block of a written 1 GiB tmpfs file read by pread ${f.preadUs.toFixed(2)} us`,
    `(${Math.round(1e3 / f.preadUs)}K reads/s: the ceiling of any target doing one read syscall per request on this file), by memcpy from a`,
    `shared mapping ${f.mmapCopyUs.toFixed(2)} us (${Math.round(1e3 / f.mmapCopyUs)}K/s); a thread sleeping in epoll for 1 s wakes ${w[0].toFixed(0)}-${w[w.length - 1].toFixed(0)} us`,
    `(median ${median(w).toFixed(0)} us, ${w.length} rounds) after another CPU writes its eventfd: the least any interrupt-driven target waits here.`,
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const cpu = Number(process.argv[2] ?? 0);
  const other = Number(process.argv[3] ?? 1);
  pinCurrentThread(other);
  const f = measurePlatformFloor('/dev/shm', cpu, other);
  if (!f) process.exit(1);
  process.stdout.write(`${describeFloor(f, cpu).join('\n')}\n${JSON.stringify(f)}\n`);
}
