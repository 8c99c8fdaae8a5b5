// What an NBD bdev (main thread) and its channels (reactor threads) share: the channel spec and
// the control words through which channels report their connections' state.
import type { BdevChannelSpec } from '../bdev.ts';
import type { StreamTarget } from '../../sys/stream-socket.ts';

export const NBD_MODULE = 'nbd';

export interface NbdTimeouts {
  /** Connect plus handshake of one attempt. */
  connectMs: number;
  /** Between failed attempts. */
  reconnectDelayMs: number;
  /** Without a connection this long, held I/O fails with EIO, and new I/O at once (0 = never). */
  fastIoFailMs: number;
  /** A connected server that answers nothing this long while requests wait is reconnected (0 = never). */
  ioTimeoutMs: number;
}

export interface NbdChannelSpec extends BdevChannelSpec {
  module: 'nbd';
  target: StreamTarget;
  exportName: string;
  /** Writes, trims and write-zeroes fail with EROFS. */
  readOnly: boolean;
  timeouts: NbdTimeouts;
  /** Int32 control words (CTL_*). */
  control: SharedArrayBuffer;
}

export const CTL_CHANNELS = 0; // channels open
export const CTL_CONNECTED = 1; // channels with a connection in the transmission phase
export const CTL_CONNECTS = 2; // successful handshakes, all channels
export const CTL_LOSSES = 3; // connections lost
export const CTL_FAILED_IOS = 4; // I/O failed for want of a connection
export const CTL_LAST_ERRNO = 5; // of the last failed attempt or loss (0 = none)
export const CTL_RESENT = 6; // requests resent after a reconnect
export const CTL_WORDS = 8;
