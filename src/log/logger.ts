// Structured logging (pino: JSON lines, cheap enough for the control plane; never used per I/O).
import { pino, type Logger } from 'pino';

export type { Logger };

const level = process.env.VHOSTD_LOG_LEVEL ?? (process.env.NODE_TEST_CONTEXT ? 'silent' : 'info');

export const rootLogger: Logger = pino({ level, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: true }));

export function componentLogger(component: string, bindings: Record<string, unknown> = {}): Logger {
  return rootLogger.child({ component, ...bindings });
}

/** Changes the level of every logger (the CLI's --log-level). */
export function setLogLevel(newLevel: string): void {
  rootLogger.level = newLevel;
}
