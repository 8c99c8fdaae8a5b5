// Skip or fail when the machine cannot run VMs: skipping keeps `npm test`
// usable on a laptop without QEMU, but in CI (`CI` set) a missing
// prerequisite is a broken CI machine and must fail loudly.
import type { TestContext } from 'node:test';
import { VmPrerequisiteMissing } from './vm-errors.ts';

export function inCi(): boolean {
  const v = process.env.CI;
  return v !== undefined && v !== '' && v !== '0' && v !== 'false';
}

/**
 * Runs `prepare`; if it throws VmPrerequisiteMissing, skips the test (or, in
 * CI, rethrows). Returns undefined when skipped.
 */
export async function prepareOrSkip<T>(t: TestContext, prepare: () => T | Promise<T>): Promise<T | undefined> {
  try {
    return await prepare();
  } catch (e) {
    if (e instanceof VmPrerequisiteMissing && !inCi()) {
      t.skip(`VM prerequisite missing: ${e.message}`);
      return undefined;
    }
    if (e instanceof VmPrerequisiteMissing) {
      e.message = `${e.message} (CI is set: missing VM prerequisites fail instead of skipping)`;
    }
    throw e;
  }
}
