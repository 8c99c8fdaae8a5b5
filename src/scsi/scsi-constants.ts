// SCSI numbers from T10 SAM-5 / SPC-4 / SBC-3, with the specs' names.

// --- Operation codes (SPC-4, SBC-3) ---
export const SCSI_OP_TEST_UNIT_READY = 0x00;
export const SCSI_OP_REQUEST_SENSE = 0x03;
export const SCSI_OP_READ_6 = 0x08;
export const SCSI_OP_WRITE_6 = 0x0a;
export const SCSI_OP_INQUIRY = 0x12;
export const SCSI_OP_MODE_SELECT_6 = 0x15;
export const SCSI_OP_MODE_SENSE_6 = 0x1a;
export const SCSI_OP_START_STOP_UNIT = 0x1b;
export const SCSI_OP_PREVENT_ALLOW_MEDIUM_REMOVAL = 0x1e;
export const SCSI_OP_READ_CAPACITY_10 = 0x25;
export const SCSI_OP_READ_10 = 0x28;
export const SCSI_OP_WRITE_10 = 0x2a;
export const SCSI_OP_VERIFY_10 = 0x2f;
export const SCSI_OP_SYNCHRONIZE_CACHE_10 = 0x35;
export const SCSI_OP_WRITE_SAME_10 = 0x41;
export const SCSI_OP_UNMAP = 0x42;
export const SCSI_OP_MODE_SELECT_10 = 0x55;
export const SCSI_OP_MODE_SENSE_10 = 0x5a;
export const SCSI_OP_PERSISTENT_RESERVE_IN = 0x5e;
export const SCSI_OP_PERSISTENT_RESERVE_OUT = 0x5f;
export const SCSI_OP_READ_16 = 0x88;
export const SCSI_OP_COMPARE_AND_WRITE = 0x89;
export const SCSI_OP_WRITE_16 = 0x8a;
export const SCSI_OP_VERIFY_16 = 0x8f;
export const SCSI_OP_SYNCHRONIZE_CACHE_16 = 0x91;
export const SCSI_OP_WRITE_SAME_16 = 0x93;
export const SCSI_OP_SERVICE_ACTION_IN_16 = 0x9e;
export const SCSI_OP_REPORT_LUNS = 0xa0;
export const SCSI_OP_MAINTENANCE_IN = 0xa3;
export const SCSI_OP_READ_12 = 0xa8;
export const SCSI_OP_WRITE_12 = 0xaa;
export const SCSI_OP_VERIFY_12 = 0xaf;

// Service actions
export const SCSI_SAI_READ_CAPACITY_16 = 0x10;
export const SCSI_MI_REPORT_SUPPORTED_OPERATION_CODES = 0x0c;

// --- Status (SAM-5) ---
export const SCSI_STATUS_GOOD = 0x00;
export const SCSI_STATUS_CHECK_CONDITION = 0x02;
export const SCSI_STATUS_CONDITION_MET = 0x04;
export const SCSI_STATUS_BUSY = 0x08;
export const SCSI_STATUS_RESERVATION_CONFLICT = 0x18;
export const SCSI_STATUS_TASK_SET_FULL = 0x28;

// --- Sense keys (SPC-4 table 27) ---
export const SCSI_SENSE_NO_SENSE = 0x00;
export const SCSI_SENSE_RECOVERED_ERROR = 0x01;
export const SCSI_SENSE_NOT_READY = 0x02;
export const SCSI_SENSE_MEDIUM_ERROR = 0x03;
export const SCSI_SENSE_HARDWARE_ERROR = 0x04;
export const SCSI_SENSE_ILLEGAL_REQUEST = 0x05;
export const SCSI_SENSE_UNIT_ATTENTION = 0x06;
export const SCSI_SENSE_DATA_PROTECT = 0x07;
export const SCSI_SENSE_ABORTED_COMMAND = 0x0b;
export const SCSI_SENSE_MISCOMPARE = 0x0e;

// --- Additional sense code / qualifier pairs, as (ASC << 8) | ASCQ ---
export const SCSI_ASC_NO_ADDITIONAL_SENSE = 0x0000;
export const SCSI_ASC_WRITE_ERROR = 0x0c00;
export const SCSI_ASC_UNRECOVERED_READ_ERROR = 0x1100;
export const SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR = 0x1a00;
export const SCSI_ASC_MISCOMPARE_DURING_VERIFY = 0x1d00;
export const SCSI_ASC_INVALID_COMMAND_OPERATION_CODE = 0x2000;
export const SCSI_ASC_LBA_OUT_OF_RANGE = 0x2100;
export const SCSI_ASC_INVALID_FIELD_IN_CDB = 0x2400;
export const SCSI_ASC_LOGICAL_UNIT_NOT_SUPPORTED = 0x2500;
export const SCSI_ASC_INVALID_FIELD_IN_PARAMETER_LIST = 0x2600;
export const SCSI_ASC_WRITE_PROTECTED = 0x2700;
export const SCSI_ASC_SPACE_ALLOCATION_FAILED_WRITE_PROTECT = 0x2707;
export const SCSI_ASC_POWER_ON_RESET = 0x2900;
export const SCSI_ASC_I_T_NEXUS_LOSS_OCCURRED = 0x2907;
export const SCSI_ASC_MODE_PARAMETERS_CHANGED = 0x2a01;
export const SCSI_ASC_CAPACITY_DATA_HAS_CHANGED = 0x2a09;
export const SCSI_ASC_SAVING_PARAMETERS_NOT_SUPPORTED = 0x3900;
export const SCSI_ASC_REPORTED_LUNS_DATA_HAS_CHANGED = 0x3f0e;
export const SCSI_ASC_INTERNAL_TARGET_FAILURE = 0x4400;

// --- Sense data formats (SPC-4 4.5) ---
export const SCSI_SENSE_RESPONSE_FIXED_CURRENT = 0x70;
export const SCSI_SENSE_RESPONSE_DESCRIPTOR_CURRENT = 0x72;
export const SCSI_FIXED_SENSE_LENGTH = 18;

// --- VPD page codes (SPC-4 7.8, SBC-3 6.5) ---
export const SCSI_VPD_SUPPORTED_PAGES = 0x00;
export const SCSI_VPD_UNIT_SERIAL_NUMBER = 0x80;
export const SCSI_VPD_DEVICE_IDENTIFICATION = 0x83;
export const SCSI_VPD_BLOCK_LIMITS = 0xb0;
export const SCSI_VPD_BLOCK_DEVICE_CHARACTERISTICS = 0xb1;
export const SCSI_VPD_LOGICAL_BLOCK_PROVISIONING = 0xb2;

// --- Mode pages (SPC-4 7.5, SBC-3 6.4) ---
export const SCSI_MODE_PAGE_CACHING = 0x08;
export const SCSI_MODE_PAGE_CONTROL = 0x0a;
export const SCSI_MODE_PAGE_INFORMATIONAL_EXCEPTIONS = 0x1c;
export const SCSI_MODE_PAGE_ALL = 0x3f;
export const SCSI_MODE_SUBPAGE_ALL = 0xff;
export const SCSI_MODE_PC_CURRENT = 0;
export const SCSI_MODE_PC_CHANGEABLE = 1;
export const SCSI_MODE_PC_DEFAULT = 2;
export const SCSI_MODE_PC_SAVED = 3;

// --- Standard INQUIRY ---
export const SCSI_PERIPHERAL_DEVICE_TYPE_DISK = 0x00;
/** Peripheral qualifier 3 (no LU) with device type 0x1F (unknown). */
export const SCSI_PERIPHERAL_NO_LUN = 0x7f;
export const SCSI_VERSION_SPC4 = 0x06;
/** Version descriptors (SPC-4 table 148). */
export const SCSI_VERSION_DESCRIPTOR_SAM5 = 0x00a0;
export const SCSI_VERSION_DESCRIPTOR_SPC4 = 0x0460;
export const SCSI_VERSION_DESCRIPTOR_SBC3 = 0x04c0;

// --- Identification designators (SPC-4 7.8.6) ---
export const SCSI_CODE_SET_BINARY = 1;
export const SCSI_CODE_SET_ASCII = 2;
export const SCSI_DESIGNATOR_T10_VENDOR_ID = 1;
export const SCSI_DESIGNATOR_NAA = 3;
export const SCSI_NAA_IEEE_REGISTERED_EXTENDED = 6;

// --- REPORT LUNS select report (SPC-4 6.33) ---
export const SCSI_SELECT_REPORT_ALL_ADDRESSED = 0x00;
export const SCSI_SELECT_REPORT_WELL_KNOWN = 0x01;
export const SCSI_SELECT_REPORT_ALL = 0x02;

// --- Task management (SAM-5 7.x): our numbering of the service responses; the transport maps them ---
export const SCSI_TMF_FUNCTION_COMPLETE = 0;
export const SCSI_TMF_FUNCTION_SUCCEEDED = 1;
export const SCSI_TMF_FUNCTION_REJECTED = 2;
export const SCSI_TMF_INCORRECT_LUN = 3;

// --- Limits of this implementation ---
/** Highest LUN id (14-bit flat space addressing, as virtio-scsi). */
export const SCSI_MAX_LUN_ID = 16383;
/** UNMAP descriptors accepted per command (VPD B0 MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT). */
export const SCSI_MAX_UNMAP_DESCRIPTORS = 256;
/** VPD B0 MAXIMUM UNMAP LBA COUNT: no limit. */
export const SCSI_MAX_UNMAP_LBA_COUNT = 0xffffffff;
/** VPD B0 MAXIMUM WRITE SAME LENGTH; bounds the time one replicate may keep a reactor busy. */
export const SCSI_MAX_WRITE_SAME_BLOCKS = 0x400000;
/** Size of the per-LUN data scratch buffer (WRITE SAME pattern, VERIFY and COMPARE AND WRITE reads). */
export const SCSI_SCRATCH_BYTES = 65536;
/** Largest MODE SELECT parameter list accepted (our pages fit in 68 bytes). */
export const SCSI_MAX_MODE_SELECT_LENGTH = 512;
