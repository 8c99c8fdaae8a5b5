// Failure context for VM tests: the daemon's log (warnings, queue errors) appended to the message.
import type { Daemon } from '../integration/daemon-process.ts';

export function withDaemonLog(d: Daemon, check: () => void): void {
  try {
    check();
  } catch (e) {
    if (e instanceof Error) e.message += `\n--- vhostd log:\n${d.stderr.join('').slice(-20000)}`;
    throw e;
  }
}
