// What an RBD bdev's channels share with it and with each other: the image handle (one per bdev:
// a second handle of the same image would be a second exclusive-lock owner, and the lock would
// ping-pong between the reactors) and a SharedArrayBuffer of control words.
//
// All channels of an image pop its one completion queue (rbd_poll_io_events). A completion popped
// by a channel that did not submit it goes to its owner's inbox: a ring of (slot, result) entries
// in the control words, written by any reactor and read by the owner's poll().
import type { BdevChannelSpec } from '../bdev.ts';

export const RBD_MODULE = 'rbd';

/** Channels (reactors) one image serves at once. */
export const RBD_MAX_CHANNELS = 64;
/** Requests a channel holds at once; its inbox has as many entries, so it never overflows. */
export const RBD_SLOTS = 1024;

// Control words (Int32Array indices).
export const CTL_CHANNELS = 0;
export const CTL_FAILED_IOS = 1;
export const CTL_LAST_ERRNO = 2;
/** Completions handed from one channel to another (a reactor popped another's). */
export const CTL_FORWARDED = 3;
const CTL_USED = 8;
const CTL_TAIL = CTL_USED + RBD_MAX_CHANNELS;
const CTL_INBOX = CTL_TAIL + RBD_MAX_CHANNELS;
const ENTRY_WORDS = 2;
export const CTL_WORDS = CTL_INBOX + RBD_MAX_CHANNELS * RBD_SLOTS * ENTRY_WORDS;

/** Word holding 1 while channel `ch` is open. */
export function usedWord(ch: number): number {
  return CTL_USED + ch;
}
/** Inbox producers' counter of channel `ch`. */
export function tailWord(ch: number): number {
  return CTL_TAIL + ch;
}
/** First word of entry `i` (0..RBD_SLOTS-1) of channel `ch`'s inbox: slot + 1 (0 = empty), then the result. */
export function entryWord(ch: number, i: number): number {
  return CTL_INBOX + (ch * RBD_SLOTS + i) * ENTRY_WORDS;
}

/** A completion's argument: the channel that submitted it and its slot. */
export function completionArg(ch: number, slot: number): number {
  return ch * 65536 + slot;
}

export interface RbdChannelSpec extends BdevChannelSpec {
  module: typeof RBD_MODULE;
  /** rbd_image_t, valid while the bdev exists. */
  image: bigint;
  /** The image's completion eventfd (librbd writes it per completion; so does a forwarding channel). */
  eventFd: number;
  readOnly: boolean;
  control: SharedArrayBuffer;
}
