// A fixed-size bit array (used clusters, used metadata pages, used blob ids). Bit i is
// bits[i >> 3] & (1 << (i & 7)): the same byte order as the on-disk masks.
import { BlobError } from './blob-error.ts';

export class Bitmap {
  readonly length: number;
  readonly bits: Uint8Array;
  /** Lowest index that may be clear: a search hint, kept conservative. */
  #hint = 0;

  constructor(length: number, bits?: Uint8Array) {
    if (!Number.isSafeInteger(length) || length < 0) throw new BlobError('INVALID_ARGUMENT', `bitmap length ${length}`);
    this.length = length;
    const bytes = Math.ceil(length / 8);
    this.bits = new Uint8Array(bytes);
    if (bits) {
      this.bits.set(bits.subarray(0, bytes));
      // Bits past `length` in the last byte are not part of the set.
      if (length % 8 !== 0 && bytes > 0) this.bits[bytes - 1] &= (1 << (length % 8)) - 1;
    }
  }

  #check(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.length) {
      throw new BlobError('OUT_OF_RANGE', `bit ${i} outside a bitmap of ${this.length}`);
    }
  }

  get(i: number): boolean {
    this.#check(i);
    return (this.bits[i >> 3] & (1 << (i & 7))) !== 0;
  }

  set(i: number): void {
    this.#check(i);
    this.bits[i >> 3] |= 1 << (i & 7);
  }

  clear(i: number): void {
    this.#check(i);
    this.bits[i >> 3] &= ~(1 << (i & 7));
    if (i < this.#hint) this.#hint = i;
  }

  /** First clear bit at or after `from`, or -1. */
  findFirstClear(from = 0): number {
    let i = Math.max(from, this.#hint);
    while (i < this.length) {
      const byte = this.bits[i >> 3];
      if (byte === 0xff && (i & 7) === 0) {
        i += 8;
        continue;
      }
      if ((byte & (1 << (i & 7))) === 0) {
        if (from <= this.#hint) this.#hint = i;
        return i;
      }
      i++;
    }
    if (from <= this.#hint) this.#hint = this.length;
    return -1;
  }

  countSet(): number {
    let n = 0;
    for (let b of this.bits) {
      while (b) {
        b &= b - 1;
        n++;
      }
    }
    return n;
  }

  /** Replaces the contents with another bitmap's of the same length. */
  assign(other: Bitmap): void {
    if (other.length !== this.length) throw new BlobError('INVALID_ARGUMENT', `bitmap of ${other.length} assigned to one of ${this.length}`);
    this.bits.set(other.bits);
    this.#hint = 0;
  }

  equals(other: Bitmap): boolean {
    if (other.length !== this.length) return false;
    for (let i = 0; i < this.bits.length; i++) if (this.bits[i] !== other.bits[i]) return false;
    return true;
  }

  clone(): Bitmap {
    return new Bitmap(this.length, this.bits);
  }
}
