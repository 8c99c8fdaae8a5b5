// The LUN's names, all derived from the bdev UUID so they are stable across restarts and hosts:
// the unit serial number (VPD 0x80), an NAA 6 name and a T10 vendor id designator (VPD 0x83).
// Computed once per LUN on the control path.

export const SCSI_VENDOR_ID = 'VHOSTD';
export const SCSI_PRODUCT_REVISION = '0001';

/**
 * IEEE company id of our NAA names. Not an IEEE-assigned OUI: the X bit (0x020000) marks it as
 * locally administered, so it cannot clash with a registered vendor's names.
 */
export const VHOSTD_NAA_COMPANY_ID = 0x025648;

/** An ASCII field of exactly len bytes: non-printable characters become '_', padded with spaces (SPC-4 4.4.1). */
export function asciiField(s: string, len: number): Uint8Array {
  const out = new Uint8Array(len).fill(0x20);
  for (let i = 0; i < len && i < s.length; i++) {
    const c = s.charCodeAt(i);
    out[i] = c >= 0x20 && c <= 0x7e ? c : 0x5f;
  }
  return out;
}

function uuidBytes(uuid: string): Uint8Array {
  const hex = uuid.replace(/-/g, '');
  const b = new Uint8Array(16);
  for (let i = 0; i < 16; i++) b[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return b;
}

/** Unit serial number: the UUID's 32 hex digits, lower case. */
export function serialFromUuid(uuid: string): Uint8Array {
  return asciiField(uuid.replace(/-/g, '').toLowerCase(), 32);
}

/**
 * NAA IEEE Registered Extended name (NAA 6, 16 bytes): NAA(4) | company id(24) | vendor
 * specific(36) | extension(64). The 100 vendor bits come from the UUID's 124 non-version bits,
 * the 24 extra ones XOR-folded in so every UUID bit changes the name.
 */
export function naaFromUuid(uuid: string): Uint8Array {
  const u = uuidBytes(uuid);
  let bits = 0n;
  for (let i = 0; i < 16; i++) {
    if (i === 6) {
      bits = (bits << 4n) | BigInt(u[i] & 0x0f); // drop the version nibble
    } else {
      bits = (bits << 8n) | BigInt(u[i]);
    }
  }
  const mask100 = (1n << 100n) - 1n;
  const v = (bits & mask100) ^ (bits >> 100n);
  const name = (6n << 124n) | (BigInt(VHOSTD_NAA_COMPANY_ID) << 100n) | v;
  const out = new Uint8Array(16);
  for (let i = 15, x = name; i >= 0; i--, x >>= 8n) out[i] = Number(x & 0xffn);
  return out;
}

/** T10 vendor id designator body: vendor id (8) then the UUID text. */
export function t10VendorIdFromUuid(uuid: string): Uint8Array {
  const out = new Uint8Array(8 + 36);
  out.set(asciiField(SCSI_VENDOR_ID, 8), 0);
  out.set(asciiField(uuid.toLowerCase(), 36), 8);
  return out;
}
