// Per thread (a reactor is one): the open bdev channels, and which of them announce completions
// on a readable fd (BdevChannel.wakeFds) instead of needing to be polled. The reactor sleeps with
// I/O in flight only when every channel that has some is such a channel; it watches their fds.
// Index loops: the reactor asks around each sleep, code too cold to be optimized, where a for-of
// allocates an iterator.
import type { BdevChannel } from './bdev.ts';

export interface WakeFdWatcher {
  add(fd: number): void;
  remove(fd: number): void;
}

const channels: BdevChannel[] = [];
const fdRefs = new Map<number, number>();
let watcher: WakeFdWatcher | null = null;

/** The reactor's epoll; fds of channels already open are added at once. */
export function setWakeFdWatcher(w: WakeFdWatcher | null): void {
  watcher = w;
  if (w) for (const fd of fdRefs.keys()) w.add(fd);
}

export function trackChannel(ch: BdevChannel): void {
  channels.push(ch);
  const fds = ch.wakeFds ?? [];
  for (let i = 0; i < fds.length; i++) {
    const n = fdRefs.get(fds[i]) ?? 0;
    fdRefs.set(fds[i], n + 1);
    if (n === 0) watcher?.add(fds[i]);
  }
}

export function untrackChannel(ch: BdevChannel): void {
  const at = channels.indexOf(ch);
  if (at < 0) return;
  channels.splice(at, 1);
  const fds = ch.wakeFds ?? [];
  for (let i = 0; i < fds.length; i++) {
    const n = (fdRefs.get(fds[i]) ?? 1) - 1;
    if (n > 0) fdRefs.set(fds[i], n);
    else {
      fdRefs.delete(fds[i]);
      watcher?.remove(fds[i]);
    }
  }
}

/**
 * True when this thread's channels have I/O in flight and every one that has some announces its
 * completions on an fd: the reactor may sleep in epoll (those fds wake it).
 */
export function inflightAnnouncedByFds(): boolean {
  let announced = false;
  for (let i = 0; i < channels.length; i++) {
    const ch = channels[i];
    if (ch.inflight() === 0) continue;
    if (ch.wakeFds === undefined) return false;
    announced = true;
  }
  return announced;
}
