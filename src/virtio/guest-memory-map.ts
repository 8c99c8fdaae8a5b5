// Maps a vhost-user memory table (region fds) into this thread and wraps it as a GuestMemory.
// Each region is mmap(fd, mmapOffset + size) and used from mmapOffset, as the vhost-user spec says.
// Control plane: runs once per memory-table change per thread that touches guest memory.
import { fdSize } from '../sys/fd.ts';
import { mmapFd, munmap, viewOf } from '../sys/memory.ts';
import { GuestMemory, type MappedRegion } from './guest-memory.ts';
import { GuestMemoryError } from './guest-memory-error.ts';

export interface GuestRegionSource {
  guestPhysAddr: number;
  size: number;
  userAddr: number;
  mmapOffset: number;
  /** Not closed here: the caller owns it (it may be mapped again by other threads). */
  fd: number;
}

export interface MappedGuestMemory {
  memory: GuestMemory;
  /** Unmaps every region; idempotent. Call only once no view over this memory is used again. */
  unmap(): void;
}

interface Mapping {
  base: bigint;
  length: number;
}

function unmapAll(mappings: Mapping[]): void {
  let first: unknown = null;
  for (const m of mappings) {
    try {
      munmap(m.base, m.length);
    } catch (e) {
      first ??= e;
    }
  }
  mappings.length = 0;
  if (first !== null) throw new GuestMemoryError('MAP_FAILED', `munmap of guest memory failed: ${String(first)}`, { cause: first });
}

export function mapGuestMemory(sources: readonly GuestRegionSource[]): MappedGuestMemory {
  const mappings: Mapping[] = [];
  const regions: MappedRegion[] = [];
  try {
    for (let i = 0; i < sources.length; i++) {
      const s = sources[i];
      if (!Number.isSafeInteger(s.mmapOffset) || s.mmapOffset < 0 || !Number.isSafeInteger(s.size) || s.size <= 0) {
        throw new GuestMemoryError('REGION_BAD_FIELD', `region ${i}: mmapOffset ${s.mmapOffset} / size ${s.size} invalid`);
      }
      const length = s.mmapOffset + s.size;
      if (length > Number.MAX_SAFE_INTEGER) {
        throw new GuestMemoryError('REGION_OVERFLOW', `region ${i}: mmapOffset 0x${s.mmapOffset.toString(16)} + size 0x${s.size.toString(16)} passes 2^53`);
      }
      // A mapping past the end of the file faults (SIGBUS) on access: refuse it up front.
      let fileSize: number;
      try {
        fileSize = fdSize(s.fd);
      } catch (e) {
        throw new GuestMemoryError('MAP_FAILED', `region ${i}: cannot stat fd ${s.fd}: ${String(e)}`, { cause: e });
      }
      if (length > fileSize) {
        throw new GuestMemoryError(
          'REGION_BEYOND_FILE',
          `region ${i}: mmapOffset 0x${s.mmapOffset.toString(16)} + size 0x${s.size.toString(16)} exceeds the file size 0x${fileSize.toString(16)} of fd ${s.fd}`,
        );
      }
      let base: bigint;
      try {
        base = mmapFd(s.fd, length, 0);
      } catch (e) {
        throw new GuestMemoryError('MAP_FAILED', `region ${i}: ${String(e)}`, { cause: e });
      }
      mappings.push({ base, length });
      const hostAddr = base + BigInt(s.mmapOffset);
      regions.push({
        guestPhysAddr: s.guestPhysAddr,
        size: s.size,
        userAddr: s.userAddr,
        hostAddr,
        bytes: new Uint8Array(viewOf(hostAddr, s.size)),
      });
    }
    const memory = new GuestMemory(regions);
    return { memory, unmap: () => unmapAll(mappings) };
  } catch (e) {
    try {
      unmapAll(mappings);
    } catch {
      // The original failure is the one worth reporting.
    }
    throw e;
  }
}
