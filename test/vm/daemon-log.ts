// Failure context for VM tests: the daemon's log (warnings, queue errors) appended to the message.
import type { Daemon, DaemonOptions } from '../integration/daemon-process.ts';

/**
 * Daemons under VM tests log every vhost-user message (debug, ~60 lines per VM): when a guest
 * hangs, the log appended to the failure shows the last message the daemon got from QEMU.
 */
export const VM_DAEMON: DaemonOptions = { logLevel: 'debug' };

export function withDaemonLog(d: Daemon, check: () => void): void {
  try {
    check();
  } catch (e) {
    if (e instanceof Error) {
      const log = `\n--- vhostd log:\n${d.stderr.join('').slice(-20000)}`;
      e.message += log;
      // The test runner prints the stack, whose first lines are the message as it was when thrown.
      if (e.stack !== undefined) e.stack += log;
    }
    throw e;
  }
}
