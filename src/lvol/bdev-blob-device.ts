// The blobstore's device on the control-plane thread: a BdevChannel of the base bdev, opened here
// like any reactor opens one. Metadata I/O is rare and may allocate; completions of asynchronous
// channels (io_uring) are reaped by polling on the event loop while any request is in flight.
import type { BlobDevice } from '../blob/blob-device.ts';
import { checkDeviceRange } from '../blob/blob-device.ts';
import { BDEV_OK, type BdevChannel, type BdevIoWaiter } from '../bdev/bdev.ts';
import { SgList } from '../iovec/sg-list.ts';
import { LvolError } from './lvol-error.ts';

class PendingIo implements BdevIoWaiter {
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
  readonly what: string;
  readonly owner: BdevBlobDevice;
  constructor(owner: BdevBlobDevice, what: string, resolve: () => void, reject: (e: Error) => void) {
    this.owner = owner;
    this.what = what;
    this.resolve = resolve;
    this.reject = reject;
  }
  bdevIoDone(status: number): void {
    this.owner.ioDone();
    if (status === BDEV_OK) this.resolve();
    else this.reject(new LvolError('LVOL_IO_ERROR', `${this.what} on base bdev failed with errno ${-status}`));
  }
}

export class BdevBlobDevice implements BlobDevice {
  readonly blockSize: number;
  readonly #channel: BdevChannel;
  /** Base bdev reads unmapped blocks as zeroes: unmap is enough to clear; else write zeroes. */
  readonly #unmapReadsZero: boolean;
  /** The base bdev has flush: without it there is no volatile cache, completed writes are durable. */
  readonly #flushes: boolean;
  #inflight = 0;
  #pumping = false;

  constructor(channel: BdevChannel, unmapReadsZero: boolean, flushes: boolean) {
    this.#channel = channel;
    this.#flushes = flushes;
    this.blockSize = channel.blockSize;
    this.#unmapReadsZero = unmapReadsZero;
  }

  get numBlocks(): number {
    return this.#channel.numBlocks;
  }

  /** The base bdev grew (or shrank): the blobstore sees the new size at its next grow. */
  resize(numBlocks: number): void {
    this.#channel.resize(numBlocks);
  }

  ioDone(): void {
    this.#inflight--;
  }

  #submit(what: string, issue: (w: BdevIoWaiter) => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#inflight++;
      issue(new PendingIo(this, what, resolve, reject));
      this.#pump();
    });
  }

  /** Polls the channel on the event loop until nothing is in flight. */
  #pump(): void {
    if (this.#pumping || this.#inflight === 0) return;
    this.#pumping = true;
    const turn = (): void => {
      this.#channel.poll();
      if (this.#inflight > 0) setImmediate(turn);
      else this.#pumping = false;
    };
    setImmediate(turn);
  }

  read(offsetBytes: number, len: number, dst: Uint8Array): Promise<void> {
    checkDeviceRange(this, offsetBytes, len);
    const sg = new SgList(1);
    sg.push(dst, 0, len);
    const bs = this.blockSize;
    return this.#submit(`read [${offsetBytes}, +${len})`, (w) => this.#channel.read(offsetBytes / bs, len / bs, sg, 0, w));
  }

  write(offsetBytes: number, src: Uint8Array): Promise<void> {
    checkDeviceRange(this, offsetBytes, src.length);
    const sg = new SgList(1);
    sg.push(src, 0, src.length);
    const bs = this.blockSize;
    return this.#submit(`write [${offsetBytes}, +${src.length})`, (w) => this.#channel.write(offsetBytes / bs, src.length / bs, sg, 0, w));
  }

  flush(): Promise<void> {
    if (!this.#flushes) return Promise.resolve();
    return this.#submit('flush', (w) => this.#channel.flush(0, this.numBlocks, w));
  }

  unmap(offsetBytes: number, len: number): Promise<void> {
    checkDeviceRange(this, offsetBytes, len);
    const bs = this.blockSize;
    if (this.#unmapReadsZero) return this.#submit(`unmap [${offsetBytes}, +${len})`, (w) => this.#channel.unmap(offsetBytes / bs, len / bs, w));
    return this.#submit(`write zeroes [${offsetBytes}, +${len})`, (w) => this.#channel.writeZeroes(offsetBytes / bs, len / bs, w));
  }

  /** Zeroes a range whatever the base does on unmap (clear_method write_zeroes). */
  writeZeroes(offsetBytes: number, len: number): Promise<void> {
    checkDeviceRange(this, offsetBytes, len);
    const bs = this.blockSize;
    return this.#submit(`write zeroes [${offsetBytes}, +${len})`, (w) => this.#channel.writeZeroes(offsetBytes / bs, len / bs, w));
  }

  close(): void {
    this.#channel.close();
  }
}
