// The data of a Fabrics Connect command (NVMe-oF 1.1, 3.3): host identifier, controller ID
// (0xFFFF on the admin queue: any), subsystem and host NQNs. Used on every queue of a controller.
export const CONNECT_DATA_SIZE = 1024;

export function encodeConnectData(hostid: Uint8Array, cntlid: number, subnqn: string, hostnqn: string, into?: Uint8Array): Uint8Array {
  const b = into ?? new Uint8Array(CONNECT_DATA_SIZE);
  b.fill(0, 0, CONNECT_DATA_SIZE);
  b.set(hostid.subarray(0, 16), 0);
  b[16] = cntlid & 0xff;
  b[17] = cntlid >> 8;
  const enc = new TextEncoder();
  b.set(enc.encode(subnqn).subarray(0, 255), 256);
  b.set(enc.encode(hostnqn).subarray(0, 255), 512);
  return b;
}

/** 16 bytes of a UUID "xxxxxxxx-xxxx-..." (the host identifier). */
export function uuidBytes(uuid: string): Uint8Array {
  return Uint8Array.from(Buffer.from(uuid.replace(/-/g, ''), 'hex'));
}
