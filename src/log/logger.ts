// Structured logging (pino; cheap enough for the control plane, never used per I/O). Records go to
// stderr as JSON lines, or as one human-readable line each (pino-pretty's formatter, run
// synchronously here: no transport thread that could lose the last lines at exit) when the
// daemon's --log-format says so (by default: when stderr is a terminal).
import { writeSync } from 'node:fs';
import { pino, type Logger } from 'pino';
import { prettyFactory } from 'pino-pretty';

export type { Logger };

export const LOG_FORMATS = ['auto', 'pretty', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

const level = process.env.VHOSTD_LOG_LEVEL ?? (process.env.NODE_TEST_CONTEXT ? 'silent' : 'info');

/** Writes pino's JSON lines to stderr, as they are or through a formatter. */
class LogSink {
  private format: ((line: string) => string) | null = null;
  /** What pretty()/plain() last chose, for threads started from this one. */
  output: { format: 'pretty' | 'json'; color: boolean } = { format: 'json', color: false };
  private readonly json = pino.destination({ fd: 2, sync: true });

  write(line: string): void {
    if (this.format === null) this.json.write(line);
    else writeSync(2, this.format(line));
  }

  pretty(color: boolean): void {
    this.output = { format: 'pretty', color };
    this.format = prettyFactory({
      colorize: color,
      translateTime: 'HH:MM:ss.l',
      ignore: 'pid,hostname,component',
      messageFormat: '{if component}{component}: {end}{msg}',
      singleLine: true,
    });
  }

  plain(): void {
    this.output = { format: 'json', color: false };
    this.format = null;
  }
}

const sink = new LogSink();

export const rootLogger: Logger = pino({ level, base: { pid: process.pid } }, sink);

/** A logger whose records carry `component` (once: a child of it must not set component again). */
export function componentLogger(component: string, bindings: Record<string, unknown> = {}): Logger {
  return rootLogger.child({ component, ...bindings });
}

/** Changes the level of every logger (the CLI's --log-level). */
export function setLogLevel(newLevel: string): void {
  rootLogger.level = newLevel;
}

/** What --log-format auto means for a process whose stderr is (or is not) a terminal. */
export function resolveLogFormat(format: LogFormat, stderrIsTty: boolean): 'pretty' | 'json' {
  if (format === 'auto') return stderrIsTty ? 'pretty' : 'json';
  return format;
}

/** Switches every logger of this thread to JSON lines or human-readable lines (colored if asked). */
export function setLogFormat(format: 'pretty' | 'json', color = false): void {
  if (format === 'pretty') sink.pretty(color);
  else sink.plain();
}

/** This thread's log output, for a worker thread to apply with setLogFormat. */
export function logOutput(): { format: 'pretty' | 'json'; color: boolean } {
  return sink.output;
}
