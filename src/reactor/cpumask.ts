// Parses SPDK-style CPU masks: "0x3", "3", "[0,2-3]".

export class CpumaskError extends Error {
  readonly code = 'BAD_CPUMASK';
}

export function parseCpumask(mask: string): number[] {
  const s = mask.trim();
  const cpus = new Set<number>();
  if (s.startsWith('[') && s.endsWith(']')) {
    for (const part of s.slice(1, -1).split(',')) {
      const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
      if (!m) throw new CpumaskError(`invalid cpumask '${mask}': bad element '${part}'`);
      const lo = Number(m[1]);
      const hi = m[2] === undefined ? lo : Number(m[2]);
      if (hi < lo || hi > 1023) throw new CpumaskError(`invalid cpumask '${mask}': bad range '${part}'`);
      for (let c = lo; c <= hi; c++) cpus.add(c);
    }
  } else {
    const hex = s.toLowerCase().startsWith('0x') ? s.slice(2) : s;
    if (!/^[0-9a-fA-F]+$/.test(hex)) throw new CpumaskError(`invalid cpumask '${mask}': expected hex like 0x3 or a list like [0,1]`);
    let v = BigInt('0x' + hex);
    for (let c = 0; v > 0n; c++, v >>= 1n) if (v & 1n) cpus.add(c);
  }
  if (cpus.size === 0) throw new CpumaskError(`invalid cpumask '${mask}': no CPU selected`);
  return [...cpus].sort((a, b) => a - b);
}

export function formatCpumask(cpus: readonly number[]): string {
  let v = 0n;
  for (const c of cpus) v |= 1n << BigInt(c);
  return '0x' + v.toString(16);
}
