// Verifiable data: each 4-byte word depends on the unit, the write generation and its position.

export function fillPattern(buf: Uint8Array, len: number, unit: number, generation: number): void {
  const words = new Uint32Array(buf.buffer, buf.byteOffset, len >>> 2);
  const seed = (Math.imul(unit >>> 0, 0x9e3779b1) ^ Math.imul(generation, 0x85ebca6b)) >>> 0;
  for (let i = 0; i < words.length; i++) words[i] = (seed + Math.imul(i, 0x27d4eb2d)) >>> 0;
}

export function checkPattern(buf: Uint8Array, len: number, unit: number, generation: number): boolean {
  const words = new Uint32Array(buf.buffer, buf.byteOffset, len >>> 2);
  const seed = (Math.imul(unit >>> 0, 0x9e3779b1) ^ Math.imul(generation, 0x85ebca6b)) >>> 0;
  for (let i = 0; i < words.length; i++) if (words[i] !== ((seed + Math.imul(i, 0x27d4eb2d)) >>> 0)) return false;
  return true;
}
