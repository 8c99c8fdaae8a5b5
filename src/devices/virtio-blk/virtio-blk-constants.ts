// virtio-blk constants (OASIS virtio spec, device type 2).
export const VIRTIO_BLK_F_SIZE_MAX = 1n;
export const VIRTIO_BLK_F_SEG_MAX = 2n;
export const VIRTIO_BLK_F_GEOMETRY = 4n;
export const VIRTIO_BLK_F_RO = 5n;
export const VIRTIO_BLK_F_BLK_SIZE = 6n;
export const VIRTIO_BLK_F_FLUSH = 9n;
export const VIRTIO_BLK_F_TOPOLOGY = 10n;
export const VIRTIO_BLK_F_CONFIG_WCE = 11n;
export const VIRTIO_BLK_F_MQ = 12n;
export const VIRTIO_BLK_F_DISCARD = 13n;
export const VIRTIO_BLK_F_WRITE_ZEROES = 14n;

export const VIRTIO_BLK_T_IN = 0;
export const VIRTIO_BLK_T_OUT = 1;
export const VIRTIO_BLK_T_FLUSH = 4;
export const VIRTIO_BLK_T_GET_ID = 8;
export const VIRTIO_BLK_T_DISCARD = 11;
export const VIRTIO_BLK_T_WRITE_ZEROES = 13;

export const VIRTIO_BLK_S_OK = 0;
export const VIRTIO_BLK_S_IOERR = 1;
export const VIRTIO_BLK_S_UNSUPP = 2;

export const VIRTIO_BLK_ID_BYTES = 20;
export const VIRTIO_BLK_SECTOR_SIZE = 512;
/** Request header: u32 type, u32 reserved, u64 sector. */
export const VIRTIO_BLK_OUTHDR_SIZE = 16;
/** Discard / write-zeroes segment: u64 sector, u32 num_sectors, u32 flags. */
export const VIRTIO_BLK_DWZ_SEG_SIZE = 16;
export const VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP = 1;

/** What vhostd advertises (config space) and enforces. */
export const BLK_SIZE_MAX = 131072;
export const BLK_SEG_MAX = 126;
export const BLK_MAX_DISCARD_SEG = 16;
export const BLK_MAX_DISCARD_SECTORS = 0x3fffff; // 2 GiB - 512: fits the 32-bit byte counts Linux uses
