// The RPC method table: name -> params schema + handler + how its errors are reported. call()
// is the one path every request takes, from a socket or in-process (config replay at start-up).
import type { z } from 'zod';
import type { Logger } from '../log/logger.ts';
import { METHOD_SCHEMAS, type MethodName, type MethodParams, type MethodSchema } from './method-schemas.ts';
import { invalidParams, methodNotFound, toRpcError, type ErrorStyle } from './rpc-error.ts';

export type RpcHandler<P> = (params: P) => unknown;

interface RpcMethod {
  readonly schema: MethodSchema;
  readonly errorStyle: ErrorStyle;
  readonly handler: RpcHandler<Record<string, unknown>>;
}

/** Says which parameter is wrong and why, from zod's issues. */
export function describeIssues(issues: readonly z.core.$ZodIssue[], params: Record<string, unknown>): string {
  return issues
    .map((issue) => {
      if (issue.code === 'unrecognized_keys') {
        return `unknown parameter${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}`;
      }
      const path = issue.path.map(String).join('.');
      if (issue.code === 'invalid_type' && issue.path.length === 1 && !(String(issue.path[0]) in params)) {
        return `missing required parameter '${path}'`;
      }
      const msg = issue.message.replace(/^Invalid input: /, '');
      return path ? `'${path}': ${msg}` : msg;
    })
    .join('; ');
}

export class MethodTable {
  readonly #methods = new Map<string, RpcMethod>();
  readonly #logger: Logger | undefined;

  constructor(logger?: Logger) {
    this.#logger = logger;
  }

  /** Registers one of the methods of METHOD_SCHEMAS, typed by its schema. */
  register<N extends MethodName>(name: N, handler: RpcHandler<MethodParams<N>>, errorStyle: ErrorStyle = 'errno'): void {
    this.registerSchema(METHOD_SCHEMAS[name], handler as RpcHandler<Record<string, unknown>>, errorStyle);
  }

  /** Registers a method described elsewhere (layers adding their own methods). */
  registerSchema(schema: MethodSchema, handler: RpcHandler<Record<string, unknown>>, errorStyle: ErrorStyle = 'errno'): void {
    if (this.#methods.has(schema.name)) throw new Error(`RPC method '${schema.name}' registered twice`);
    this.#methods.set(schema.name, { schema, handler, errorStyle });
  }

  has(name: string): boolean {
    return this.#methods.has(name);
  }

  /** Method names in registration order. */
  names(): string[] {
    return [...this.#methods.keys()];
  }

  schemaOf(name: string): MethodSchema | undefined {
    return this.#methods.get(name)?.schema;
  }

  /**
   * Validates params against the method's schema and runs it. Absent or null params mean {}.
   * Throws RpcError: -32601 unknown method, -32602 bad params, or the method's domain error.
   */
  async call(method: string, params?: unknown): Promise<unknown> {
    const m = this.#methods.get(method);
    if (!m) throw methodNotFound(method);
    const raw = params ?? {};
    if (typeof raw !== 'object' || Array.isArray(raw)) {
      throw invalidParams('params must be an object of named parameters');
    }
    const parsed = m.schema.params.safeParse(raw);
    if (!parsed.success) throw invalidParams(describeIssues(parsed.error.issues, raw as Record<string, unknown>));
    try {
      const result = await m.handler(parsed.data);
      this.#logger?.debug({ method }, 'rpc call done');
      return result;
    } catch (e) {
      const err = toRpcError(e, m.errorStyle);
      const level = err.code === 'RPC_INTERNAL_ERROR' ? 'error' : 'info';
      this.#logger?.[level]({ method, code: err.code, err: e instanceof Error ? e.message : String(e) }, 'rpc call failed');
      throw err;
    }
  }
}
