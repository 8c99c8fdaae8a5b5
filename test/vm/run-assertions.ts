// Assertions on a VM run, with the context a CI log needs to tell where a guest stopped: its steps,
// the failed steps' output, and (when it never finished) the last console lines and QEMU's stderr.
import assert from 'node:assert/strict';
import type { VmRun } from './qemu.ts';
import { formatResults } from './guest-results.ts';

export function runContext(run: VmRun): string {
  const logs = [...run.logs].map(([name, lines]) => `--- ${name}\n${lines.join('\n')}`).join('\n');
  const tail = run.done ? '' : `\n--- last console lines\n${run.consoleTail.join('\n')}`;
  return `\n${formatResults(run.results)}\n${logs}${tail}\nlog: ${run.logPath}`;
}

/** A clean run: powered off by itself, exactly these steps reported, all PASS. */
export function assertGuestSteps(run: VmRun, steps: readonly string[]): void {
  const context = runContext(run);
  const what = run.bootTimedOut ? 'before the guest reported its first step' : '';
  assert.equal(run.timedOut, false, `VM timed out after ${run.elapsedMs} ms ${what}${context}`);
  assert.equal(run.done, true, `guest never printed VHOSTD-DONE${context}`);
  assert.equal(run.exitCode, 0, `QEMU exited ${run.exitCode} (signal ${run.signal})${context}`);
  assert.deepEqual(run.results.filter((r) => r.status === 'FAIL').map((r) => r.name), [], `failed steps${context}`);
  assert.deepEqual(run.results.map((r) => r.name), steps, `steps reported${context}`);
}
