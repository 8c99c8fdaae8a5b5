// The delay bdev (SPDK's bdev_delay): a bdev over a base bdev whose reads and writes complete no
// sooner than a set latency after submission. Other I/O passes through undelayed, as SPDK's. For
// testing what a slow device does to the layers above (I/O held in flight, task management).
import type { Bdev, BdevChannelSpec, BdevIoTypes } from '../bdev.ts';
import { BdevError } from '../bdev-error.ts';
import { checkBdevName, normalizeUuid } from '../bdev-geometry.ts';

export const DELAY_MODULE = 'delay';

export interface DelayLatencies {
  /** Microseconds. SPDK also takes p99 latencies; every I/O here takes the average. */
  avgReadUs: number;
  p99ReadUs: number;
  avgWriteUs: number;
  p99WriteUs: number;
}

export interface DelayChannelSpec extends BdevChannelSpec {
  module: 'delay';
  base: BdevChannelSpec;
  readLatencyUs: number;
  writeLatencyUs: number;
}

/** Longest latency accepted: one hour, far above any test's need, well inside a double's precision. */
const MAX_LATENCY_US = 3_600_000_000;

export function checkLatency(name: string, us: number): number {
  if (!Number.isSafeInteger(us) || us < 0 || us > MAX_LATENCY_US) {
    throw new BdevError('BDEV_INVALID_PARAM', `${name} ${us}: microseconds, an integer 0..${MAX_LATENCY_US}`);
  }
  return us;
}

export class DelayBdev implements Bdev {
  readonly name: string;
  readonly aliases: string[] = [];
  readonly uuid: string;
  readonly productName = 'delay';
  readonly moduleName = DELAY_MODULE;
  readonly base: Bdev;
  readonly latencies: DelayLatencies;
  claimedBy: string | null = null;

  constructor(base: Bdev, name: string, latencies: DelayLatencies, uuid?: string) {
    checkBdevName(name);
    for (const [k, v] of Object.entries(latencies)) checkLatency(k, v);
    this.base = base;
    this.name = name;
    this.latencies = { ...latencies };
    this.uuid = normalizeUuid(uuid);
  }

  get blockSize(): number {
    return this.base.blockSize;
  }

  get numBlocks(): number {
    return this.base.numBlocks;
  }

  get ioTypes(): BdevIoTypes {
    return this.base.ioTypes;
  }

  get writeCache(): boolean {
    return this.base.writeCache;
  }

  get unmapReadsZero(): boolean {
    return this.base.unmapReadsZero;
  }

  get optimalIoBoundary(): number {
    return this.base.optimalIoBoundary;
  }

  channelSpec(): DelayChannelSpec {
    return {
      module: DELAY_MODULE,
      name: this.name,
      blockSize: this.blockSize,
      numBlocks: this.numBlocks,
      base: this.base.channelSpec(),
      readLatencyUs: this.latencies.avgReadUs,
      writeLatencyUs: this.latencies.avgWriteUs,
    };
  }

  driverSpecific(): Record<string, unknown> {
    const l = this.latencies;
    return {
      delay: {
        name: this.name,
        base_bdev_name: this.base.name,
        avg_read_latency: l.avgReadUs,
        p99_read_latency: l.p99ReadUs,
        avg_write_latency: l.avgWriteUs,
        p99_write_latency: l.p99WriteUs,
      },
    };
  }

  /** The base bdev stays; its claim is released by whoever deletes this one. */
  destroy(): void {}
}
