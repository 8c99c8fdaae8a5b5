// Watches an fd from the libuv loop of the current thread (control plane sockets).
import koffi from 'koffi';

export interface FdWatch {
  stop(): void;
}

/**
 * Calls onReadable whenever fd is readable (or hung up) until stop(). An exception escaping a
 * koffi poll callback aborts the process, so it is caught here and handed to onError.
 */
export function watchReadable(
  fd: number,
  onReadable: (hangup: boolean) => void,
  onError: (e: unknown) => void = (e) => process.emitWarning(`fd ${fd} watch callback failed: ${String(e)}`),
): FdWatch {
  const handle = koffi.node.poll(fd, { readable: true, disconnect: true }, (ev) => {
    try {
      onReadable(ev.disconnect && !ev.readable);
    } catch (e) {
      try {
        onError(e);
      } catch {
        // nothing more can be done from inside the poll callback
      }
    }
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
