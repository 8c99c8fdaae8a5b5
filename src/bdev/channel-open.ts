// Opens a bdev's per-thread I/O channel from its structured-cloneable spec. Runs inside reactor
// worker threads, which receive specs by postMessage: dispatch on spec.module.
import type { BdevChannel, BdevChannelSpec } from './bdev.ts';
import { BdevError } from './bdev-error.ts';
import { MallocChannel } from './modules/malloc-channel.ts';
import type { MallocChannelSpec } from './modules/malloc.ts';
import { NullChannel, type NullChannelSpec } from './modules/null.ts';
import { LvolChannel } from './modules/lvol-channel.ts';
import type { LvolChannelSpec } from './modules/lvol-shared.ts';
import { UringChannel } from './modules/uring-channel.ts';
import type { UringChannelSpec } from './modules/uring.ts';
import { DelayChannel } from './modules/delay-channel.ts';
import type { DelayChannelSpec } from './modules/delay.ts';
import { NbdChannel } from './modules/nbd-channel.ts';
import type { NbdChannelSpec } from './modules/nbd-shared.ts';
import { NvmeChannel } from './modules/nvme-channel.ts';
import type { NvmeChannelSpec } from './modules/nvme-shared.ts';
import { RbdChannel } from './modules/rbd-channel.ts';
import type { RbdChannelSpec } from './modules/rbd-shared.ts';
import { trackChannel, untrackChannel } from './channel-wait.ts';

/** Opens the channel and keeps this thread's list of open channels (channel-wait.ts) in step. */
export function openBdevChannel(spec: BdevChannelSpec): BdevChannel {
  const ch = openModuleChannel(spec);
  trackChannel(ch);
  const close = ch.close.bind(ch);
  ch.close = () => {
    untrackChannel(ch);
    close();
  };
  return ch;
}

function openModuleChannel(spec: BdevChannelSpec): BdevChannel {
  if (spec === null || typeof spec !== 'object' || typeof spec.name !== 'string') {
    throw new BdevError('BDEV_INVALID_SPEC', 'bdev channel spec must be an object with a name');
  }
  switch (spec.module) {
    case 'malloc':
      if (typeof spec.fd !== 'number' || typeof spec.uuid !== 'string') {
        throw new BdevError('BDEV_INVALID_SPEC', `malloc channel '${spec.name}': spec lacks fd or uuid`);
      }
      return new MallocChannel(spec as MallocChannelSpec);
    case 'null':
      return new NullChannel(spec as NullChannelSpec);
    case 'uring':
      return new UringChannel(spec as UringChannelSpec);
    case 'lvol':
      if (!(spec.control instanceof SharedArrayBuffer) || typeof spec.base !== 'object' || typeof spec.uuid !== 'string') {
        throw new BdevError('BDEV_INVALID_SPEC', `lvol channel '${spec.name}': spec lacks control words, base or uuid`);
      }
      return new LvolChannel(spec as LvolChannelSpec, openBdevChannel);
    case 'nbd':
      return new NbdChannel(spec as NbdChannelSpec);
    case 'rbd':
      return new RbdChannel(spec as RbdChannelSpec);
    case 'nvme':
      return new NvmeChannel(spec as NvmeChannelSpec);
    case 'delay':
      return new DelayChannel(spec as DelayChannelSpec, openBdevChannel);
    default:
      throw new BdevError('BDEV_UNKNOWN_MODULE', `bdev '${spec.name}': no channel for module '${String(spec.module)}'`);
  }
}
