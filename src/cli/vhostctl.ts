// vhostctl: command-line JSON-RPC client of vhostd (SPDK's rpc.py works too; this one knows
// vhostd's methods, takes --param value pairs and checks them before sending).
//   vhostctl [-s socket] [-t timeout] METHOD [--param value ...]
//   vhostctl [-s socket] [-t timeout] call METHOD ['{"json": "params"}']
import type { Writable } from 'node:stream';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { METHOD_SCHEMAS, paramFields, type MethodSchema, type ParamField } from '../rpc/method-schemas.ts';
import { describeIssues } from '../rpc/method-table.ts';
import { RpcClient } from '../rpc/rpc-client.ts';
import { RpcError } from '../rpc/rpc-error.ts';
import { DEFAULT_RPC_SOCKET } from '../rpc/rpc-server.ts';
import { PACKAGE_VERSION } from '../rpc/package-version.ts';
import { LONG_METHODS, watchProgress, type ProgressWatch } from './operation-progress.ts';

const SCHEMAS: Map<string, MethodSchema> = new Map(Object.values(METHOD_SCHEMAS).map((m) => [m.name, m]));

class UsageError extends Error {
  readonly code = 'VHOSTCTL_USAGE';
}

export interface VhostctlIo {
  out(text: string): void;
  err(text: string): void;
  /** Where a progress bar is drawn (stderr by default). */
  errStream?: Writable & { isTTY?: boolean };
}

const stdio: VhostctlIo = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
  errStream: process.stderr,
};

function fieldUsage(f: ParamField): string {
  const value = f.kind === 'boolean' ? '' : ` <${f.kind === 'json' ? 'json' : f.kind}>`;
  return `--${f.name}${value}`;
}

/** Help for one method: its parameters with their types, then its examples. */
export function methodHelp(schema: MethodSchema): string {
  const fields = paramFields(schema.params);
  const lines = [`${schema.name}: ${schema.summary}`];
  if (fields.length === 0) lines.push('  (no parameters)');
  const width = Math.max(0, ...fields.map((f) => fieldUsage(f).length));
  for (const f of fields) {
    lines.push(`  ${fieldUsage(f).padEnd(width)}  ${f.description}${f.required ? ' (required)' : ''}`);
  }
  for (const ex of schema.examples ?? []) lines.push(`  e.g. ${ex}`);
  return lines.join('\n') + '\n';
}

function methodsHelp(): string {
  const blocks = [...SCHEMAS.values()].map((s) => methodHelp(s).replace(/^/gm, '  ').trimEnd());
  return `
Methods (parameter names take dashes or underscores: --num-blocks = --num_blocks):
${blocks.join('\n')}

Other methods, and raw JSON parameters:
  vhostctl call METHOD '{"name": "m0"}'

Examples:
  vhostctl bdev_malloc_create --num_blocks 131072 --block_size 512 --name m0
  vhostctl vhost_create_scsi_controller --ctrlr vhost.0
  vhostctl vhost_scsi_controller_add_target --ctrlr vhost.0 --scsi_target_num 0 --bdev_name m0
  vhostctl bdev_get_bdevs
  vhostctl -s /run/vhostd.sock save_config > vhostd.json

Results print as JSON (a string result prints bare, as rpc.py does). On error the JSON-RPC
error code and message go to stderr and the exit status is 1.
`;
}

function coerce(field: ParamField | undefined, key: string, value: string): unknown {
  const kind = field?.kind;
  if (kind === 'string') return value;
  if (kind === 'number') {
    const n = /^\s*$/.test(value) ? NaN : Number(value);
    if (!Number.isFinite(n)) throw new UsageError(`--${key}: '${value}' is not a number`);
    return n;
  }
  if (kind === 'boolean') {
    if (value === 'true') return true;
    if (value === 'false') return false;
    throw new UsageError(`--${key}: '${value}' is not true or false`);
  }
  // json-typed or unknown method: take JSON when it parses (numbers, booleans, objects), else the text.
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

/** Turns `--name value` pairs into params, typed by the method's schema when it is known. */
export function parseParamArgs(method: string, args: string[], schema: MethodSchema | undefined): Record<string, unknown> {
  const fields = new Map((schema ? paramFields(schema.params) : []).map((f) => [f.name, f]));
  const params: Record<string, unknown> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (!arg.startsWith('--') || arg === '--') throw new UsageError(`unexpected argument '${arg}': parameters are given as --name value`);
    const eq = arg.indexOf('=');
    const key = (eq < 0 ? arg.slice(2) : arg.slice(2, eq)).replaceAll('-', '_');
    let value: string | undefined = eq < 0 ? undefined : arg.slice(eq + 1);
    const field = fields.get(key);
    if (schema && !field) {
      const known = [...fields.keys()].map((k) => `--${k}`).join(', ') || 'no parameters';
      throw new UsageError(`${method} has no parameter --${key} (it takes ${known})`);
    }
    if (Object.hasOwn(params, key)) throw new UsageError(`--${key} given twice`);
    if (field?.kind === 'boolean' && value === undefined) {
      // A bare flag means true; an explicit true/false may follow.
      const next = args[i + 1];
      value = next === 'true' || next === 'false' ? args[++i] : 'true';
    }
    if (value === undefined) {
      if (i + 1 >= args.length) throw new UsageError(`--${key} needs a value`);
      value = args[++i];
    }
    params[key] = coerce(field, key, value);
  }
  if (schema) {
    const r = schema.params.safeParse(params);
    if (!r.success) throw new UsageError(`${method}: invalid parameters: ${describeIssues(r.error.issues, params)}`);
  }
  return params;
}

function parseJsonParams(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`params are not valid JSON: ${(e as Error).message}`);
  }
  if (v !== null && typeof v !== 'object') throw new UsageError('params must be a JSON object or array');
  return v;
}

function formatResult(result: unknown): string {
  return typeof result === 'string' ? `${result}\n` : `${JSON.stringify(result, null, 2)}\n`;
}

function formatError(method: string, e: RpcError): string {
  if (e.rpcCode === 0) return `vhostctl: ${e.message}\n`;
  const detail = e.detail ? ` (${e.detail})` : '';
  return `vhostctl: ${method} failed: JSON-RPC error ${e.rpcCode}: ${e.message}${detail}\n`;
}

function timeoutSeconds(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number of seconds');
  return n;
}

/** Runs vhostctl with the given arguments (without node and script); resolves with the exit status. */
export async function main(argv: string[], io: VhostctlIo = stdio): Promise<number> {
  const program = new Command('vhostctl')
    .description('JSON-RPC client for vhostd (SPDK-compatible method names)')
    .usage('[-s socket] [-t timeout] METHOD [--param value ...]\n       vhostctl [-s socket] [-t timeout] call METHOD [JSON params]')
    .option('-s, --socket <path>', 'vhostd RPC socket', DEFAULT_RPC_SOCKET)
    .option('-t, --timeout <seconds>', 'seconds to wait for the response', timeoutSeconds, 60)
    .option('--progress', 'draw a progress bar on stderr for long operations (default: when stderr is a terminal)')
    .option('--no-progress', 'no progress bar')
    .version(PACKAGE_VERSION, '-V, --version')
    .argument('[method]', 'RPC method (see below), or "call"')
    .argument('[args...]', '--param value pairs (or METHOD and JSON params after "call")')
    .allowUnknownOption()
    .passThroughOptions()
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .addHelpText('after', methodsHelp());

  let method: string;
  let params: unknown;
  try {
    program.parse(argv, { from: 'user' });
    const [first, rest] = program.processedArgs as [string | undefined, string[]];
    if (first === undefined) {
      io.err(program.helpInformation());
      return 1;
    }
    if (first.startsWith('-')) throw new UsageError(`unknown option '${first}'`);
    if (first === 'help') {
      const s = rest[0] === undefined ? undefined : SCHEMAS.get(rest[0]);
      io.out(s ? methodHelp(s) : program.helpInformation() + methodsHelp());
      return 0;
    }
    if (first === 'call') {
      if (rest[0] === undefined) throw new UsageError('call needs a METHOD');
      if (rest.length > 2) throw new UsageError('call takes METHOD and one JSON argument');
      method = rest[0];
      params = parseJsonParams(rest[1]);
    } else {
      method = first;
      const schema = SCHEMAS.get(method);
      if (rest.includes('--help') || rest.includes('-h')) {
        io.out(schema ? methodHelp(schema) : `vhostctl knows no parameters of '${method}'; use: vhostctl call ${method} '{...}'\n`);
        return 0;
      }
      const p = parseParamArgs(method, rest, schema);
      // rpc.py sends no params member for an empty set; some SPDK methods insist on that.
      params = Object.keys(p).length > 0 ? p : undefined;
    }
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    io.err(`vhostctl: ${(e as Error).message}\n`);
    return 1;
  }

  const { socket, timeout, progress } = program.opts<{ socket: string; timeout: number; progress?: boolean }>();
  let client: RpcClient | undefined;
  let watch: ProgressWatch | null = null;
  try {
    client = await RpcClient.connect(socket, timeout * 1000);
    if (LONG_METHODS.has(method) && (progress ?? (io.errStream?.isTTY === true))) {
      watch = await watchProgress(socket, io.errStream ?? process.stderr);
    }
    const result = await client.call(method, params, timeout * 1000).finally(() => watch?.stop());
    io.out(formatResult(result));
    return 0;
  } catch (e) {
    io.err(e instanceof RpcError ? formatError(method, e) : `vhostctl: ${(e as Error).message}\n`);
    return 1;
  } finally {
    client?.close();
  }
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
