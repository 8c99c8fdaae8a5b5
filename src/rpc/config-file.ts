// SPDK's JSON configuration file: {"subsystems":[{"subsystem":"bdev","config":[{method,params}...]}...]}.
// loadConfig() replays its calls through the RPC method path, subsystems in dependency order,
// and stops at the first failing call, naming the file, subsystem, index, method and error.
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { SUBSYSTEMS, type VhostdConfig } from './subsystem-config.ts';
import { describeIssues } from './method-table.ts';

export type { ConfigCall, SubsystemConfig, VhostdConfig } from './subsystem-config.ts';

/** Anything that runs an RPC method: a MethodTable, an RpcServer, or a plain function. */
export type ConfigCaller =
  | ((method: string, params?: Record<string, unknown>) => Promise<unknown>)
  | { call(method: string, params?: Record<string, unknown>): Promise<unknown> };

export type ConfigFileErrorCode = 'CONFIG_READ_FAILED' | 'CONFIG_INVALID' | 'CONFIG_CALL_FAILED';

export class ConfigFileError extends Error {
  readonly code: ConfigFileErrorCode;
  readonly file: string;
  readonly subsystem: string | undefined;
  readonly index: number | undefined;
  readonly method: string | undefined;
  constructor(
    code: ConfigFileErrorCode,
    message: string,
    where: { file: string; subsystem?: string; index?: number; method?: string },
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'ConfigFileError';
    this.code = code;
    this.file = where.file;
    this.subsystem = where.subsystem;
    this.index = where.index;
    this.method = where.method;
  }
}

const configSchema = z.strictObject({
  subsystems: z.array(
    z.strictObject({
      subsystem: z.string(),
      config: z.array(z.strictObject({ method: z.string(), params: z.record(z.string(), z.unknown()).nullish() })).nullable(),
    }),
  ),
});

/** Validates the shape of a parsed config file. */
export function parseConfig(text: string, file = '<config>'): VhostdConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigFileError('CONFIG_INVALID', `${file}: not valid JSON: ${(e as Error).message}`, { file });
  }
  const r = configSchema.safeParse(raw);
  if (!r.success) {
    throw new ConfigFileError('CONFIG_INVALID', `${file}: not an SPDK JSON config: ${describeIssues(r.error.issues, raw as Record<string, unknown>)}`, { file });
  }
  return {
    subsystems: r.data.subsystems.map((s) => ({
      subsystem: s.subsystem,
      config: s.config === null ? null : s.config.map((c) => (c.params ? { method: c.method, params: c.params } : { method: c.method })),
    })),
  };
}

function rank(subsystem: string): number {
  const i = SUBSYSTEMS.findIndex((s) => s.subsystem === subsystem);
  return i < 0 ? SUBSYSTEMS.length : i;
}

function describeError(e: unknown): string {
  const err = e as { rpcCode?: unknown; message?: unknown; detail?: unknown; code?: unknown };
  const head = typeof err?.rpcCode === 'number' ? `${err.rpcCode} ${String(err.message)}` : String(err?.message ?? e);
  return typeof err?.detail === 'string' ? `${head} (${err.detail})` : head;
}

/** Replays every call; returns how many ran. Subsystems without calls are skipped. */
export async function replayConfig(config: VhostdConfig, caller: ConfigCaller, file = '<config>'): Promise<number> {
  const call = typeof caller === 'function' ? caller : caller.call.bind(caller);
  // Stable sort: known subsystems in dependency order (bdev before vhost_*), others after, as written.
  const ordered = [...config.subsystems].sort((a, b) => rank(a.subsystem) - rank(b.subsystem));
  let count = 0;
  for (const s of ordered) {
    const calls = s.config ?? [];
    for (let index = 0; index < calls.length; index++) {
      const c = calls[index];
      try {
        await call(c.method, c.params);
      } catch (e) {
        throw new ConfigFileError(
          'CONFIG_CALL_FAILED',
          `${file}: subsystem '${s.subsystem}' config[${index}] ${c.method} failed: ${describeError(e)}`,
          { file, subsystem: s.subsystem, index, method: c.method },
          e,
        );
      }
      count++;
    }
  }
  return count;
}

export async function loadConfig(path: string, caller: ConfigCaller): Promise<number> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new ConfigFileError('CONFIG_READ_FAILED', `cannot read config ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file: path }, e);
  }
  return replayConfig(parseConfig(text, path), caller, path);
}
