// The CLIs as a user runs them: embedded default, vhostctl, save_config + -c, global install.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NODE } from './daemon-process.ts';

const ROOT = new URL('../../', import.meta.url).pathname;

function vhostctl(rpc: string, ...args: string[]): string {
  return execFileSync(NODE, [join(ROOT, 'bin/vhostctl.js'), '-s', rpc, ...args], { encoding: 'utf8' });
}

/** Starts bin/vhostd.js and resolves once `marker` appears on stdout (or the RPC socket exists). */
async function startVhostd(args: string[], rpc: string, stdoutMarker?: string) {
  const proc = spawn(NODE, [join(ROOT, 'bin/vhostd.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const deadline = Date.now() + 15000;
  while (!(existsSync(rpc) && (!stdoutMarker || out.includes(stdoutMarker)))) {
    if (proc.exitCode !== null) throw new Error(`vhostd exited ${proc.exitCode}: ${err}`);
    if (Date.now() > deadline) throw new Error(`vhostd did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    proc,
    out: () => out,
    err: () => err,
    async stop(): Promise<number | null> {
      const exit = new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
      proc.kill('SIGTERM');
      return exit;
    },
  };
}

test('vhostd --help documents the options', () => {
  const help = execFileSync(NODE, [join(ROOT, 'bin/vhostd.js'), '--help'], { encoding: 'utf8' });
  for (const opt of ['--rpc-socket', '--socket-dir', '--json', '--cpumask', '--poll-mode', '--no-default', 'vhostctl']) {
    assert.ok(help.includes(opt), `--help mentions ${opt}`);
  }
});

test('with no configuration: a RAM disk on vhost.0, the QEMU command line, clean SIGTERM', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vhostd-cli-'));
  const rpc = join(dir, 'rpc.sock');
  try {
    const d = await startVhostd(['-S', dir, '-r', rpc, '--no-pin'], rpc, 'vhost-user-scsi-pci');
    assert.match(d.out(), new RegExp(`-chardev socket,id=vhost0,path=${join(dir, 'vhost.0')}`));
    assert.match(d.out(), /memory-backend-memfd,.*share=on/);
    const bdevs = JSON.parse(vhostctl(rpc, 'bdev_get_bdevs')) as { name: string; num_blocks: number; block_size: number; claimed: boolean }[];
    assert.equal(bdevs.length, 1);
    assert.equal(bdevs[0].name, 'Malloc0');
    assert.equal(bdevs[0].num_blocks * bdevs[0].block_size, 256 * 1024 * 1024);
    assert.equal(bdevs[0].claimed, true);
    const ctrls = JSON.parse(vhostctl(rpc, 'vhost_get_controllers')) as { ctrlr: string; socket: string; backend_specific: { scsi: { luns: { bdev_name: string }[] }[] } }[];
    assert.equal(ctrls[0].ctrlr, 'vhost.0');
    assert.equal(ctrls[0].backend_specific.scsi[0].luns[0].bdev_name, 'Malloc0');
    assert.ok(existsSync(join(dir, 'vhost.0')));
    assert.equal(await d.stop(), 0);
    assert.equal(existsSync(join(dir, 'vhost.0')), false, 'controller socket removed on exit');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('vhostctl configures a daemon; save_config output restores it with -c', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vhostd-cli-'));
  const rpc = join(dir, 'rpc.sock');
  try {
    const d = await startVhostd(['--no-default', '-S', dir, '-r', rpc, '--no-pin'], rpc);
    assert.equal(vhostctl(rpc, 'bdev_malloc_create', '--name', 'disk1', '--num_blocks', '2048', '--block_size', '4096').trim(), 'disk1');
    vhostctl(rpc, 'bdev_null_create', '--name', 'n0', '--num-blocks', '1024', '--block-size', '512');
    vhostctl(rpc, 'vhost_create_scsi_controller', '--ctrlr', 'vm1');
    assert.equal(vhostctl(rpc, 'vhost_scsi_controller_add_target', '--ctrlr', 'vm1', '--scsi_target_num', '-1', '--bdev_name', 'disk1').trim(), '0');
    assert.equal(vhostctl(rpc, 'vhost_scsi_controller_add_target', '--ctrlr', 'vm1', '--scsi_target_num', '-1', '--bdev_name', 'n0').trim(), '1');
    // Errors are clear and exit non-zero.
    assert.throws(
      () => execFileSync(NODE, [join(ROOT, 'bin/vhostctl.js'), '-s', rpc, 'bdev_malloc_delete', '--name', 'disk1'], { encoding: 'utf8', stdio: 'pipe' }),
      (e: { status: number; stderr: string }) => e.status === 1 && /busy|claimed/i.test(e.stderr),
    );
    const saved = vhostctl(rpc, 'save_config');
    assert.equal(await d.stop(), 0);

    const cfg = join(dir, 'saved.json');
    writeFileSync(cfg, saved);
    const d2 = await startVhostd(['-c', cfg, '-S', dir, '-r', rpc, '--no-pin'], rpc);
    try {
      // The RPC socket answers while the config is still being applied.
      vhostctl(rpc, 'framework_wait_init');
      const ctrls = JSON.parse(vhostctl(rpc, 'vhost_get_controllers', '--name', 'vm1')) as { backend_specific: { scsi: { scsi_dev_num: number; luns: { bdev_name: string }[] }[] } }[];
      assert.deepEqual(
        ctrls[0].backend_specific.scsi.map((t) => [t.scsi_dev_num, t.luns[0].bdev_name]),
        [[0, 'disk1'], [1, 'n0']],
      );
      const b = JSON.parse(vhostctl(rpc, 'bdev_get_bdevs', '--name', 'disk1')) as { block_size: number; num_blocks: number }[];
      assert.deepEqual([b[0].block_size, b[0].num_blocks], [4096, 2048]);
    } finally {
      const code = await d2.stop();
      assert.equal(code, 0, `second daemon: ${d2.err()}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a global install runs with the system Node.js too (re-execs with the checkout Node 24)', () => {
  const prefix = mkdtempSync(join(tmpdir(), 'vhostd-global-'));
  try {
    execFileSync('npm', ['install', '-g', '.', '--prefix', prefix, '--no-audit', '--no-fund', '--loglevel=error'], { cwd: ROOT, stdio: 'pipe' });
    const env = { ...process.env, PATH: `${join(prefix, 'bin')}:/usr/local/bin:/usr/bin:/bin` };
    const version = (JSON.parse(execFileSync(NODE, ['-p', `JSON.stringify(require('${join(ROOT, 'package.json')}').version)`], { encoding: 'utf8' })) as string);
    assert.equal(execFileSync('vhostd', ['--version'], { env, encoding: 'utf8' }).trim(), version);
    assert.equal(execFileSync('vhostctl', ['--version'], { env, encoding: 'utf8' }).trim(), version);
  } finally {
    rmSync(prefix, { recursive: true, force: true });
  }
});

/** Top-level keys of one JSON object text, in order, duplicates kept (JSON.parse would hide them). */
function topLevelKeys(text: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (depth === 1 && /^\s*:/.test(text.slice(j + 1, j + 3))) keys.push(JSON.parse(text.slice(i, j + 1)) as string);
      i = j;
    } else if (ch === '{' || ch === '[') depth++;
    else if (ch === '}' || ch === ']') depth--;
  }
  return keys;
}

test('logs on a pipe are JSON lines, each key once (component names the part that logged)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vhostd-cli-'));
  const rpc = join(dir, 'rpc.sock');
  try {
    const d = await startVhostd(['--no-default', '-S', dir, '-r', rpc, '--no-pin', '--log-level', 'debug'], rpc);
    vhostctl(rpc, 'bdev_null_create', '--name', 'n0', '--num_blocks', '1024', '--block_size', '512');
    vhostctl(rpc, 'vhost_create_blk_controller', '--ctrlr', 'b0', '--dev_name', 'n0');
    assert.equal(await d.stop(), 0);
    const components = new Set<string>();
    for (const line of d.err().trim().split('\n')) {
      const keys = topLevelKeys(line);
      assert.deepEqual(keys.filter((k, i) => keys.indexOf(k) !== i), [], `a key written twice: ${line}`);
      const rec = JSON.parse(line) as { component?: string; msg?: unknown };
      assert.equal(typeof rec.msg, 'string', line);
      if (rec.component) components.add(rec.component);
    }
    for (const c of ['vhostd', 'rpc', 'reactor', 'vhost']) assert.ok(components.has(c), `a '${c}' record among ${[...components].join(', ')}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const PRETTY_LINE = /^\[\d\d:\d\d:\d\d\.\d{3}\] (TRACE|DEBUG|INFO|WARN|ERROR|FATAL): [a-z_-]+: \S/;

test('--log-format pretty writes one readable line per record; on a terminal that is the default', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vhostd-cli-'));
  const rpc = join(dir, 'rpc.sock');
  try {
    const d = await startVhostd(['--no-default', '-S', dir, '-r', rpc, '--no-pin', '--log-format', 'pretty', '--log-level', 'debug'], rpc);
    assert.equal(await d.stop(), 0);
    const lines = d.err().trim().split('\n');
    assert.ok(lines.length >= 3, d.err());
    for (const line of lines) assert.match(line, PRETTY_LINE);
    assert.ok(lines.some((l) => l.includes('reactor: ')), `a reactor thread's line: ${d.err()}`);
    assert.ok(!d.err().includes('\x1b['), 'no colour codes on a pipe');

    // Under a pseudo-terminal (util-linux script), auto picks pretty, with colours.
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.NO_COLOR;
    const cmd = `${NODE} ${join(ROOT, 'src/cli/vhostd.ts')} --no-default -S ${dir} -r ${rpc} --no-pin & p=$!; sleep 3; kill $p; wait $p`;
    const tty = execFileSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', env });
    const listening = tty.split(/\r?\n/).filter((l) => l.includes('rpc server listening'));
    assert.equal(listening.length, 1, tty);
    assert.ok(!listening[0].trimStart().startsWith('{'), `not JSON on a terminal: ${listening[0]}`);
    assert.ok(listening[0].includes('\x1b['), `coloured on a terminal: ${JSON.stringify(listening[0])}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
