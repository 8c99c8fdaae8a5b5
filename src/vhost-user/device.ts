// What a vhost-user connection needs from the device behind it (a controller). The connection owns
// protocol state (features, ring configuration, fds until handed over); the device owns data-path
// state (mappings, running rings). Every call is awaited before the next message is processed.

/** One guest memory region as SET_MEM_TABLE / ADD_MEM_REG describe it, with its fd. */
export interface VhostUserRegion {
  guestPhysAddr: number;
  size: number;
  userAddr: number;
  mmapOffset: number;
  /** Owned by the device once passed to setMemory(); it closes the fd when done with it. */
  fd: number;
}

/** The inflight-tracking region of SET_INFLIGHT_FD (INFLIGHT_SHMFD), with its fd. */
export interface InflightRegion {
  /** Owned by the device once passed to setInflight(); it closes the fd when done with it. */
  fd: number;
  mmapSize: number;
  mmapOffset: number;
  numQueues: number;
  queueSize: number;
}

/** A ring that is both started (kick set) and enabled: the device may process it. */
export interface VringSetup {
  index: number;
  size: number;
  /** Front-end user addresses (translate through the regions' userAddr). */
  descUserAddr: number;
  availUserAddr: number;
  usedUserAddr: number;
  logGuestAddr: number;
  /** SET_VRING_ADDR flags (bit 0: log the used ring). */
  addrFlags: number;
  /** Next avail index to process (packed rings: bit 15 is the wrap counter). */
  lastAvailIdx: number;
  /** -1 when the front-end polls (no fd). Still owned by the connection. */
  kickFd: number;
  /** -1 when the guest has no interrupt for this queue. Still owned by the connection. */
  callFd: number;
  /** Negotiated virtio features. */
  features: bigint;
}

export interface VhostUserDevice {
  readonly name: string;
  /** Virtio feature bits offered (device bits plus ring bits; the connection adds PROTOCOL_FEATURES). */
  deviceFeatures(): bigint;
  /** Protocol feature bits the device can support; the connection offers the intersection with its own. */
  protocolFeatures(): bigint;
  /** Queue count reported by GET_QUEUE_NUM (maximum the device accepts). */
  maxQueues(): number;
  /** Device config space bytes [offset, offset+size), zero-padded past the end; null = refuse. */
  getConfig(offset: number, size: number): Uint8Array | null;
  /** SET_CONFIG; false = refuse. */
  setConfig(offset: number, data: Uint8Array, flags: number): boolean;

  /** A front-end connected (only one at a time per device). */
  connected(): void;
  /** Negotiated features changed (SET_FEATURES). */
  setFeatures(features: bigint): Promise<void>;
  /** Replaces the whole memory table. Rings that run keep running on the new table. The device owns
   *  (and closes) the region fds whether or not this succeeds. */
  setMemory(regions: VhostUserRegion[]): Promise<void>;
  /**
   * SET_INFLIGHT_FD: the region where rings record the requests they hold, kept by the front-end
   * across a back-end restart; rings started later resume from it. Sent while no ring runs. The
   * device owns (and closes) the fd whether or not this succeeds.
   */
  setInflight(region: InflightRegion): Promise<void>;
  /** Starts processing a ring. */
  startRing(setup: VringSetup): Promise<void>;
  /** Stops a ring; resolves with the next avail index once the device no longer touches it. */
  stopRing(index: number): Promise<number>;
  /** A running ring's call fd changed (-1 = none). The old fd is closed after this resolves. */
  setRingCallFd(index: number, fd: number): Promise<void>;
  /** RESET_DEVICE / RESET_OWNER: rings are stopped already; drop device state (not the memory table). */
  reset(): Promise<void>;
  /** The front-end went away: rings are stopped already; release mappings and state. */
  disconnected(): Promise<void>;
}
