// What GET_CONFIG returns from a device config space: the asked-for window, zero-padded.

/** Bytes [offset, offset+size) of a config space, zero-padded past its end. */
export function configSlice(space: Uint8Array, offset: number, size: number): Uint8Array {
  const out = new Uint8Array(size);
  if (offset < space.length) out.set(space.subarray(offset, Math.min(space.length, offset + size)));
  return out;
}
