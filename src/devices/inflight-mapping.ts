// Maps a SET_INFLIGHT_FD region into the reactor thread and hands out each queue's record.
import { fdSize } from '../sys/fd.ts';
import { mmapFd, munmap, viewOf } from '../sys/memory.ts';
import { inflightQueueBytes } from '../virtio/split-inflight.ts';
import type { InflightRegion } from '../vhost-user/device.ts';
import { DeviceError } from './device-error.ts';

export interface MappedInflight {
  /** Queue `index`'s record, or null when the region was not made for it (index or size differ). */
  queueRecord(index: number, size: number): Uint8Array | null;
  /** Call only once no ring's log views the region. */
  unmap(): void;
}

export function mapInflightRegion(r: InflightRegion): MappedInflight {
  const perQueue = inflightQueueBytes(r.queueSize);
  const length = r.mmapOffset + r.mmapSize;
  if (r.mmapSize < perQueue * r.numQueues || !Number.isSafeInteger(length)) {
    throw new DeviceError('BAD_INFLIGHT', `inflight region of ${r.mmapSize} bytes cannot hold ${r.numQueues} queue(s) of ${r.queueSize}`);
  }
  // A mapping past the end of the file faults (SIGBUS) on access.
  const fileSize = fdSize(r.fd);
  if (length > fileSize) throw new DeviceError('BAD_INFLIGHT', `inflight region ends at ${length}, its file has ${fileSize} bytes`);
  const base = mmapFd(r.fd, length, 0);
  const bytes = new Uint8Array(viewOf(base, length), r.mmapOffset, r.mmapSize);
  let mapped = true;
  return {
    queueRecord(index: number, size: number): Uint8Array | null {
      if (!mapped || index >= r.numQueues || size !== r.queueSize) return null;
      return bytes.subarray(index * perQueue, (index + 1) * perQueue);
    },
    unmap(): void {
      if (!mapped) return;
      mapped = false;
      munmap(base, length);
    },
  };
}
