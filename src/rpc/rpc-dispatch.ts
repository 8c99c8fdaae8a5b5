// Turns one parsed JSON-RPC 2.0 message (a request or a batch) into its response(s). Transport-free.
import { invalidRequest, toRpcError, type JsonRpcErrorObject } from './rpc-error.ts';

export type JsonRpcId = string | number | null;

export interface JsonRpcResponse {
  jsonrpc: '2.0';
  id: JsonRpcId;
  result?: unknown;
  error?: JsonRpcErrorObject;
}

export interface RpcCaller {
  call(method: string, params?: unknown): Promise<unknown>;
}

/** Requests per batch; more is refused whole (a batch is answered as one write). */
export const MAX_BATCH_LENGTH = 1024;

const REQUEST_KEYS = new Set(['jsonrpc', 'method', 'params', 'id']);

function errorResponse(id: JsonRpcId, err: unknown): JsonRpcResponse {
  return { jsonrpc: '2.0', id, error: toRpcError(err).toErrorObject() };
}

function isId(v: unknown): v is JsonRpcId {
  return v === null || typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));
}

/** One request object; null when it is a notification (no id), which gets no reply, even on error. */
export async function dispatchOne(req: unknown, caller: RpcCaller): Promise<JsonRpcResponse | null> {
  if (req === null || typeof req !== 'object' || Array.isArray(req)) {
    return errorResponse(null, invalidRequest('a request must be a JSON object'));
  }
  const r = req as Record<string, unknown>;
  const hasId = Object.hasOwn(r, 'id');
  const id: JsonRpcId = hasId && isId(r.id) ? r.id : null;
  const unknownKey = Object.keys(r).find((k) => !REQUEST_KEYS.has(k));
  if (unknownKey !== undefined) return errorResponse(id, invalidRequest(`unknown member '${unknownKey}' in request`));
  if (hasId && !isId(r.id)) return errorResponse(null, invalidRequest('id must be a string, a number or null'));
  // SPDK accepts a missing "jsonrpc" (JSON-RPC 1.0 style clients); a present one must say "2.0".
  if (Object.hasOwn(r, 'jsonrpc') && r.jsonrpc !== '2.0') return errorResponse(id, invalidRequest('jsonrpc must be "2.0"'));
  if (typeof r.method !== 'string') return errorResponse(id, invalidRequest('method must be a string'));
  const params = r.params;
  if (params !== undefined && params !== null && typeof params !== 'object') {
    return errorResponse(id, invalidRequest('params must be an object, an array or null'));
  }
  try {
    const result = await caller.call(r.method, params ?? undefined);
    return hasId ? { jsonrpc: '2.0', id, result: result === undefined ? null : result } : null;
  } catch (e) {
    return hasId ? errorResponse(id, e) : null;
  }
}

/** A request or a batch (array). Batch elements run in order; null when nothing is to be sent. */
export async function dispatchMessage(msg: unknown, caller: RpcCaller): Promise<JsonRpcResponse | JsonRpcResponse[] | null> {
  if (!Array.isArray(msg)) return dispatchOne(msg, caller);
  if (msg.length === 0) return errorResponse(null, invalidRequest('empty batch'));
  if (msg.length > MAX_BATCH_LENGTH) return errorResponse(null, invalidRequest(`batch of ${msg.length} requests (max ${MAX_BATCH_LENGTH})`));
  const out: JsonRpcResponse[] = [];
  for (const req of msg) {
    const res = await dispatchOne(req, caller);
    if (res) out.push(res);
  }
  return out.length > 0 ? out : null;
}
