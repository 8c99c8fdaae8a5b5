// What the vhost_* RPC methods need from the controller layer (implemented in src/controller/).
// Errors thrown are RpcError-compatible: they carry a stable `code` string and a message.

export interface ScsiTargetInfo {
  scsi_dev_num: number;
  id: number;
  target_name: string;
  luns: { id: number; bdev_name: string }[];
}

export interface ControllerInfo {
  ctrlr: string;
  cpumask: string;
  delay_base_us: number;
  iops_threshold: number;
  socket: string;
  sessions: { vid: number; id: number; name: string; started: boolean }[];
  backend_specific: Record<string, unknown>;
}

export interface VhostApi {
  /** Socket directory (-S). */
  readonly socketDir: string;
  createScsiController(ctrlr: string, cpumask: string | undefined): Promise<void>;
  createBlkController(ctrlr: string, devName: string, opts: { readonly: boolean; packedRing: boolean; cpumask?: string }): Promise<void>;
  /** Returns the target number used (scsiTargetNum -1 = first free). */
  addScsiTarget(ctrlr: string, scsiTargetNum: number, bdevName: string): Promise<number>;
  removeScsiTarget(ctrlr: string, scsiTargetNum: number): Promise<void>;
  getControllers(name?: string): ControllerInfo[];
  setCoalescing(ctrlr: string, delayBaseUs: number, iopsThreshold: number): Promise<void>;
  deleteController(ctrlr: string): Promise<void>;
  /** Config for save_config: list of {method, params} that recreate the controllers. */
  configCalls(): { method: string; params: Record<string, unknown> }[];
}
