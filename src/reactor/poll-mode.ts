// How a reactor waits for work.
export type PollMode = 'poll' | 'adaptive' | 'interrupt';

export const POLL_MODES: readonly PollMode[] = ['poll', 'adaptive', 'interrupt'];

/** Adaptive mode: spin this long without work before re-enabling notifications and sleeping. */
export const ADAPTIVE_IDLE_US = 200;
/** Upper bound of one sleep, so a lost wakeup can never stall a queue for long. */
export const MAX_SLEEP_MS = 1000;
