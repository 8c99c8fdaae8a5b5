// `npm run stress`: the unit and integration suites N times in a row with two busy loops on the
// CPUs (the project's rule: a timing- or GC-dependent test must pass 20 runs of 20 so). Prints a
// line per run and, at the end, every test that failed with how often; exit 1 if any run failed.
import { spawn } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = new URL('../', import.meta.url).pathname;
const USAGE = `usage: npm run stress -- [options] [test files or globs]
Runs the test files (default: the unit and integration suites) again and again, each run a fresh
node --test --test-concurrency=1, with busy loops spinning on the CPUs meanwhile.
  --runs N       runs (default 20)
  --loops N      busy loops (default 2: one per CPU of the project's 2-core machines; 0 = none)
  --log-dir DIR  where each run's output goes (default build/stress)
  -h, --help     this text`;

function parseCommandLine() {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        runs: { type: 'string', default: '20' },
        loops: { type: 'string', default: '2' },
        'log-dir': { type: 'string', default: join(ROOT, 'build/stress') },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (e) {
    process.stderr.write(`stress: ${(e as Error).message}\n\n${USAGE}\n`);
    process.exit(2);
  }
}

function count(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) {
    process.stderr.write(`stress: --${name} must be a whole number, not '${text}'\n`);
    process.exit(2);
  }
  return n;
}

const { values: args, positionals } = parseCommandLine();
if (args.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const runs = count('runs', args.runs);
const files = positionals.length > 0 ? positionals : ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts'];
mkdirSync(args['log-dir'], { recursive: true });

// Threads of this process, so they end with it however it ends.
const loops = Array.from({ length: count('loops', args.loops) }, () => new Worker('for (;;) {}', { eval: true }));

function runOnce(): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--test', '--test-concurrency=1', ...files], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    child.on('close', (code) => resolve({ ok: code === 0, output }));
  });
}

const failures = new Map<string, number>();
let failedRuns = 0;
for (let i = 1; i <= runs; i++) {
  const t0 = Date.now();
  const { ok, output } = await runOnce();
  writeFileSync(join(args['log-dir'], `run-${i}.log`), output);
  const totals = ['pass', 'fail'].map((k) => `${k} ${output.match(new RegExp(`^ℹ ${k} (\\d+)`, 'm'))?.[1] ?? '?'}`).join(', ');
  // The failing-tests summary at the end of node's output names each failed test once.
  const summary = output.slice(output.indexOf('✖ failing tests:'));
  const failed = ok ? [] : [...summary.matchAll(/^✖ (.*?)(?: \([\d.]+ms\))?$/gm)].map((m) => m[1]).filter((t) => t !== 'failing tests:');
  if (!ok) failedRuns++;
  for (const t of failed) failures.set(t, (failures.get(t) ?? 0) + 1);
  process.stdout.write(`run ${i}/${runs}: ${ok ? 'pass' : 'FAIL'} in ${Math.round((Date.now() - t0) / 1000)} s (${totals})${failed.length ? `: ${failed.join('; ')}` : ''}\n`);
}
await Promise.all(loops.map((w) => w.terminate()));
process.stdout.write(`${runs - failedRuns} of ${runs} runs passed with ${loops.length} busy loops; logs in ${args['log-dir']}\n`);
for (const [t, n] of failures) process.stdout.write(`  failed ${n}x: ${t}\n`);
process.exit(failedRuns === 0 ? 0 : 1);
