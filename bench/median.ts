// The median of a sample (the mean of the two middle values for an even count): the benchmarks
// report medians of repeated runs because this machine's noise moves single runs by 20% or more.
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
