// SPDK's bdevperf as a load generator: a C front-end (virtio-user) that attaches to a vhost-user
// socket and drives it faster than vhostd-bench can (see BENCHMARKS.md). Used when SPDK is built
// (../shared/tools/build-spdk.sh; SPDK_DIR, default /tmp/spdk/src); callers fall back to
// vhostd-bench when it is not.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface BdevperfJob {
  socket: string;
  device: 'scsi' | 'blk';
  /** bdevperf's -w: randread, randwrite, read, write, randrw... */
  rw: string;
  bs: number;
  iodepth: number;
  runtimeSec: number;
  cpu: number;
  /** Ring size the initiator asks for (vq_size). */
  queueSize?: number;
}

export interface BdevperfResult {
  iops: number;
  mibps: number;
  avgLatUs: number;
  maxLatUs: number;
}

export function bdevperfDir(): string | null {
  const base = process.env.SPDK_DIR ?? '/tmp/spdk/src';
  return existsSync(join(base, 'build/examples/bdevperf')) ? base : null;
}

/** Parses bdevperf's "Total : IOPS MiB/s Fail/s TO/s Average min max" line. */
export function parseBdevperf(out: string): BdevperfResult {
  const line = out.split(/\r?\n|\r/).find((l) => /^\s*Total\s+:/.test(l));
  if (!line) throw new Error(`bdevperf printed no Total line:\n${out.slice(-2000)}`);
  const f = line.split(':')[1].trim().split(/\s+/).map(Number);
  if (f.length < 7 || f.some((x) => !Number.isFinite(x))) throw new Error(`bdevperf Total line not understood: ${line}`);
  const [iops, mibps, fail, timeouts, avg, , max] = f;
  if (fail !== 0 || timeouts !== 0) throw new Error(`bdevperf saw ${fail} failed and ${timeouts} timed-out I/O per second: ${line}`);
  return { iops, mibps, avgLatUs: avg, maxLatUs: max };
}

/** Runs one bdevperf job against a vhost-user socket, pinned to job.cpu. */
export async function runBdevperf(job: BdevperfJob): Promise<BdevperfResult> {
  const base = bdevperfDir();
  if (base === null) throw new Error('bdevperf is not built (../shared/tools/build-spdk.sh, or set SPDK_DIR)');
  const dir = mkdtempSync(join(tmpdir(), 'bdevperf-'));
  const conf = join(dir, 'conf.json');
  writeFileSync(
    conf,
    JSON.stringify({
      subsystems: [
        {
          subsystem: 'bdev',
          config: [
            {
              method: 'bdev_virtio_attach_controller',
              params: { name: 'V', trtype: 'user', traddr: job.socket, dev_type: job.device, vq_count: 1, vq_size: job.queueSize ?? 512 },
            },
            { method: 'bdev_wait_for_examine' },
          ],
        },
      ],
    }),
  );
  const args = [
    '-c', String(job.cpu), join(base, 'build/examples/bdevperf'),
    '-m', `0x${(1 << job.cpu).toString(16)}`, '-s', '512', '-g', '--json', conf,
    '-q', String(job.iodepth), '-o', String(job.bs), '-w', job.rw, '-t', String(job.runtimeSec),
  ];
  try {
    const out = await new Promise<string>((resolve, reject) => {
      const p = spawn('taskset', args, {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, LD_LIBRARY_PATH: `${join(base, 'build/lib')}:${join(base, 'isa-l/.libs')}` },
      });
      let text = '';
      p.stdout.setEncoding('utf8').on('data', (d: string) => (text += d));
      p.stderr.setEncoding('utf8').on('data', (d: string) => (text += d));
      // Attaching takes about a second; a target that never answers must not hang the matrix.
      const t = setTimeout(() => p.kill('SIGKILL'), (job.runtimeSec + 30) * 1000);
      p.on('error', reject);
      p.on('exit', (code, sig) => {
        clearTimeout(t);
        if (code === 0) resolve(text);
        else reject(new Error(`bdevperf exited with ${code ?? sig}:\n${text.slice(-2000)}`));
      });
    });
    return parseBdevperf(out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
