// The guest's serial-console protocol (test/vm/guest/report.sh):
//   VHOSTD-RESULT <name> PASS|FAIL <detail>   one per step
//   VHOSTD-LOG <name>: <line>                 the tail of a failed step's output
//   VHOSTD-DONE                               the scenario ended
// Lines may carry terminal escapes before the marker and end in \r.

export type GuestStatus = 'PASS' | 'FAIL';

export interface GuestResult {
  name: string;
  status: GuestStatus;
  detail: string;
  /** Milliseconds since QEMU was started, when the host read the line. */
  atMs: number;
}

export type GuestLine =
  | { kind: 'result'; name: string; status: GuestStatus; detail: string }
  | { kind: 'log'; name: string; text: string }
  | { kind: 'done' };

const RESULT = /VHOSTD-RESULT (\S+) (PASS|FAIL)(?: (.*))?$/;
const LOG = /VHOSTD-LOG (\S+): ?(.*)$/;

/** Parses one console line; null for anything that is not ours. */
export function parseGuestLine(raw: string): GuestLine | null {
  const line = raw.replace(/\r+$/, '');
  const r = RESULT.exec(line);
  if (r) return { kind: 'result', name: r[1], status: r[2] as GuestStatus, detail: (r[3] ?? '').trim() };
  const l = LOG.exec(line);
  if (l) return { kind: 'log', name: l[1], text: l[2] };
  if (/VHOSTD-DONE\s*$/.test(line)) return { kind: 'done' };
  return null;
}

/** One-line-per-step text for assertion messages and reports. */
export function formatResults(results: readonly GuestResult[]): string {
  return results
    .map((r) => `${(r.atMs / 1000).toFixed(1).padStart(6)}s ${r.status} ${r.name}: ${r.detail}`)
    .join('\n');
}
