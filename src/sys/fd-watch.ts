// Watches an fd from the libuv loop of the current thread (control plane sockets).
import koffi from 'koffi';

export interface FdWatch {
  stop(): void;
}

/** Calls onReadable whenever fd is readable (or hung up) until stop(). */
export function watchReadable(fd: number, onReadable: (hangup: boolean) => void): FdWatch {
  const handle = koffi.node.poll(fd, { readable: true, disconnect: true }, (ev) => {
    onReadable(ev.disconnect && !ev.readable);
  });
  let stopped = false;
  return {
    stop(): void {
      if (stopped) return;
      stopped = true;
      handle.stop();
      handle.close();
    },
  };
}
