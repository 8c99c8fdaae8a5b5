// Log-linear latency histogram (HdrHistogram-like): 1/64 relative resolution from 1 ns to ~1 h,
// fixed memory, no allocation per sample.

const SUB_BITS = 6;
const SUB = 1 << SUB_BITS;
const GROUPS = 42; // 2^42 ns ~ 73 minutes

export class LatencyHistogram {
  readonly counts = new Float64Array(GROUPS * SUB);
  count = 0;
  sumNs = 0;
  minNs = Infinity;
  maxNs = 0;

  record(ns: number): void {
    if (ns < 1) ns = 1;
    this.count++;
    this.sumNs += ns;
    if (ns < this.minNs) this.minNs = ns;
    if (ns > this.maxNs) this.maxNs = ns;
    this.counts[LatencyHistogram.bucket(ns)]++;
  }

  /** Bucket index: values below 64 ns are exact; above, 64 buckets per power of two. */
  static bucket(ns: number): number {
    const v = Math.floor(ns);
    if (v < SUB) return v;
    const exp = v < 4294967296 ? 31 - Math.clz32(v) : Math.floor(Math.log2(v));
    const group = exp - SUB_BITS + 1;
    if (group >= GROUPS) return GROUPS * SUB - 1;
    return group * SUB + (Math.floor(v / 2 ** (exp - SUB_BITS)) - SUB);
  }

  /** Upper edge of a bucket in ns. */
  static bucketUpper(i: number): number {
    if (i < SUB) return i;
    const group = Math.floor(i / SUB);
    const sub = i % SUB;
    const exp = group + SUB_BITS - 1;
    return (SUB + sub + 1) * 2 ** (exp - SUB_BITS);
  }

  /** Value at quantile q in [0, 1] (bucket upper edge, clamped to the observed max). */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const target = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i];
      if (seen >= target) return Math.min(LatencyHistogram.bucketUpper(i), this.maxNs);
    }
    return this.maxNs;
  }

  mean(): number {
    return this.count === 0 ? 0 : this.sumNs / this.count;
  }

  merge(other: LatencyHistogram): void {
    for (let i = 0; i < this.counts.length; i++) this.counts[i] += other.counts[i];
    this.count += other.count;
    this.sumNs += other.sumNs;
    this.minNs = Math.min(this.minNs, other.minNs);
    this.maxNs = Math.max(this.maxNs, other.maxNs);
  }

  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.sumNs = 0;
    this.minNs = Infinity;
    this.maxNs = 0;
  }
}
