import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { startServer, type Harness } from './rpc-harness.ts';

const ROOT = new URL('../../../', import.meta.url).pathname;
const NODE = join(ROOT, 'node_modules/.bin/node');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(args: string[], script = 'src/cli/vhostctl.ts'): Promise<Run> {
  return new Promise((resolve) => {
    execFile(NODE, [join(ROOT, script), ...args], { cwd: ROOT, timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

let h: Harness;
let S: string[];
before(async () => {
  h = await startServer();
  S = ['-s', h.socketPath];
});
after(async () => {
  await h.stop();
});

test('vhostctl end to end: create, inspect, attach, refuse, call', async () => {
  let r = await run([...S, 'bdev_malloc_create', '--num_blocks', '131072', '--block_size', '512', '--name', 'm0']);
  assert.deepEqual(r, { code: 0, stdout: 'm0\n', stderr: '' });

  // Dashes in parameter names, and --key=value.
  r = await run([...S, 'bdev_malloc_create', '--num-blocks', '8', '--block-size=4096']);
  assert.deepEqual(r, { code: 0, stdout: 'Malloc0\n', stderr: '' });

  r = await run([...S, 'bdev_get_bdevs', '--name', 'm0']);
  assert.equal(r.code, 0);
  const bdevs = JSON.parse(r.stdout) as { name: string; num_blocks: number; block_size: number }[];
  assert.deepEqual(bdevs.map((b) => [b.name, b.num_blocks, b.block_size]), [['m0', 131072, 512]]);
  assert.match(r.stdout, /^\[\n  \{\n    "name": "m0",/, 'pretty-printed');

  r = await run([...S, 'vhost_create_scsi_controller', '--ctrlr', 'vhost.0']);
  assert.deepEqual(r, { code: 0, stdout: 'true\n', stderr: '' });
  r = await run([...S, 'vhost_scsi_controller_add_target', '--ctrlr', 'vhost.0', '--scsi_target_num', '-1', '--bdev_name', 'm0']);
  assert.deepEqual(r, { code: 0, stdout: '0\n', stderr: '' });

  r = await run([...S, 'bdev_malloc_delete', '--name', 'm0']);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, "vhostctl: bdev_malloc_delete failed: JSON-RPC error -16: Device or resource busy (bdev 'm0' is claimed by 'vhost-scsi vhost.0')\n");

  r = await run([...S, 'call', 'bdev_get_bdevs', '{"name": "Malloc0"}']);
  assert.equal(r.code, 0);
  assert.equal((JSON.parse(r.stdout) as { block_size: number }[])[0].block_size, 4096);

  r = await run([...S, 'rpc_get_methods', '--include-aliases']);
  assert.equal(r.code, 0);
  assert.ok((JSON.parse(r.stdout) as string[]).includes('vhost_get_controllers'));

  r = await run([...S, 'no_such_method']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, "vhostctl: no_such_method failed: JSON-RPC error -32601: Method not found (no method 'no_such_method' (rpc_get_methods lists them))\n");
});

test('vhostctl checks parameters against the method schema before connecting', async () => {
  // No server at this path: these fail on the parameters, not on the connection.
  const noServer = ['-s', join(h.dir, 'absent.sock')];
  let r = await run([...noServer, 'bdev_malloc_create', '--num_blocks', 'lots', '--block_size', '512']);
  assert.deepEqual(r, { code: 1, stdout: '', stderr: "vhostctl: --num_blocks: 'lots' is not a number\n" });
  r = await run([...noServer, 'bdev_malloc_create', '--num_blocks', '8', '--blocksize', '512']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^vhostctl: bdev_malloc_create has no parameter --blocksize \(it takes --name, --uuid, --num_blocks, --block_size,/);
  r = await run([...noServer, 'bdev_malloc_create', '--num_blocks', '8']);
  assert.deepEqual(r, { code: 1, stdout: '', stderr: "vhostctl: bdev_malloc_create: invalid parameters: missing required parameter 'block_size'\n" });
  r = await run([...noServer, 'bdev_get_bdevs', 'm0']);
  assert.deepEqual(r, { code: 1, stdout: '', stderr: "vhostctl: unexpected argument 'm0': parameters are given as --name value\n" });
  r = await run([...noServer, 'call', 'bdev_get_bdevs', '{bad']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^vhostctl: params are not valid JSON/);
  r = await run([...noServer, 'bdev_get_bdevs']);
  assert.deepEqual(r, { code: 1, stdout: '', stderr: `vhostctl: cannot connect to ${join(h.dir, 'absent.sock')}: ENOENT (is vhostd running?)\n` });
});

test('vhostctl -t: gives up after the timeout', async () => {
  const r = await run([...S, '-t', '0.3', 'bdev_get_bdevs', '--name', 'never', '--timeout', '5000']);
  assert.deepEqual(r, { code: 1, stdout: '', stderr: 'vhostctl: no response to bdev_get_bdevs within 0.3 s\n' });
});

test('vhostctl --help lists every method with its parameters; METHOD --help shows one', async () => {
  let r = await run(['--help']);
  assert.equal(r.code, 0);
  for (const m of ['bdev_malloc_create', 'vhost_scsi_controller_add_target', 'save_config', 'framework_get_config']) assert.match(r.stdout, new RegExp(`^  ${m}: `, 'm'));
  assert.match(r.stdout, /--num_blocks <number> +number of blocks \(required\)/);
  assert.match(r.stdout, /vhostctl vhost_create_scsi_controller --ctrlr vhost\.0/);
  r = await run(['vhost_scsi_controller_add_target', '--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^vhost_scsi_controller_add_target: /);
  assert.match(r.stdout, /--scsi_target_num <number> +target number, -1 for the first free one \(required\)/);
});

test('bin/vhostctl.js runs the TypeScript entry point', async () => {
  const r = await run([...S, 'spdk_get_version'], 'bin/vhostctl.js');
  assert.equal(r.code, 0, r.stderr);
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  assert.equal((JSON.parse(r.stdout) as { version: string }).version, `vhostd ${pkg.version}`);
});

test('bin/vhostctl.js inside node_modules explains why it cannot run', async () => {
  const { mkdtempSync, mkdirSync, copyFileSync, writeFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'vhostctl-nm-'));
  try {
    const pkg = join(dir, 'node_modules', 'vhostd');
    mkdirSync(join(pkg, 'bin'), { recursive: true });
    mkdirSync(join(pkg, 'src', 'cli'), { recursive: true });
    writeFileSync(join(pkg, 'package.json'), '{"type":"module"}');
    copyFileSync(join(ROOT, 'bin/vhostctl.js'), join(pkg, 'bin/vhostctl.js'));
    copyFileSync(join(ROOT, 'bin/launch.js'), join(pkg, 'bin/launch.js'));
    writeFileSync(join(pkg, 'src/cli/vhostctl.ts'), 'export const main = (): number => 0;\n');
    const r = await new Promise<Run>((resolve) => {
      execFile(NODE, [join(pkg, 'bin/vhostctl.js'), 'bdev_get_bdevs'], (err, stdout, stderr) =>
        resolve({ code: err ? Number(err.code) : 0, stdout, stderr }),
      );
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^vhostctl: Node refuses to run TypeScript inside node_modules/);
    assert.match(r.stderr, /npm install -g \./);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
