// vhostctl's progress bar for long RPCs (inflate, decouple, clearing a new lvol store): while the
// call runs, a second connection polls vhostd_get_operations and draws the operation the call
// started (cli-progress; plain lines when the output is not a terminal).
import { SingleBar } from 'cli-progress';
import type { Writable } from 'node:stream';
import { RpcClient } from '../rpc/rpc-client.ts';

/** Methods that run as tracked operations in vhostd. */
export const LONG_METHODS = new Set(['bdev_lvol_inflate', 'bdev_lvol_decouple_parent', 'bdev_lvol_create_lvstore']);

const POLL_MS = 200;

interface OperationInfo {
  id: number;
  operation: string;
  target: string;
  state: string;
  done: number;
  total: number;
}

export interface ProgressWatch {
  /** Draws the final state and closes the polling connection. */
  stop(): Promise<void>;
}

async function operations(client: RpcClient): Promise<OperationInfo[]> {
  return (await client.call('vhostd_get_operations', undefined)) as OperationInfo[];
}

/**
 * Starts watching before the call is sent: operations already known are ignored, the first new
 * one is the call's. Resolves to null when the daemon cannot report operations.
 */
export async function watchProgress(socket: string, stream: Writable & { isTTY?: boolean }): Promise<ProgressWatch | null> {
  let client: RpcClient;
  let known: Set<number>;
  try {
    client = await RpcClient.connect(socket, 5000);
    known = new Set((await operations(client)).map((o) => o.id));
  } catch {
    return null;
  }
  const bar = new SingleBar({
    stream,
    format: '{operation} {target} [{bar}] {percentage}% | {value}/{total} clusters | {duration_formatted}',
    noTTYOutput: true,
    notTTYSchedule: 1000,
    hideCursor: stream.isTTY === true,
  });
  let mine: number | undefined;
  let started = false;
  let last: OperationInfo | undefined;
  const show = (op: OperationInfo): void => {
    const payload = { operation: op.operation, target: op.target };
    if (!started) {
      bar.start(Math.max(op.total, 1), op.done, payload);
      started = true;
    }
    bar.setTotal(Math.max(op.total, 1));
    bar.update(op.state === 'done' ? Math.max(op.total, 1) : op.done, payload);
  };
  const poll = async (): Promise<void> => {
    const ops = await operations(client);
    const op = mine !== undefined ? ops.find((o) => o.id === mine) : ops.find((o) => !known.has(o.id));
    if (!op) return;
    mine = op.id;
    last = op;
    show(op);
  };
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    poll().catch(() => undefined).finally(() => (busy = false));
  }, POLL_MS);
  return {
    async stop() {
      clearInterval(timer);
      while (busy) await new Promise((r) => setTimeout(r, 10));
      await poll().catch(() => undefined);
      if (started) {
        if (last?.state === 'done') show(last);
        bar.stop();
      }
      client.close();
    },
  };
}
