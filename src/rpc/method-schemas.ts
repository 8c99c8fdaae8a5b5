// Parameter schemas and help text of every RPC method, with SPDK v23.05's parameter names and
// types. Pure data (zod only): the server validates with it and vhostctl builds its help and
// coerces command-line values with it. Objects are strict: SPDK rejects unknown parameters.
import { z } from 'zod';

const uint32 = z.number().int().min(0).max(0xffffffff);
const int32 = z.number().int().min(-0x80000000).max(0x7fffffff);
const uint64 = z.number().int().min(0);

export interface MethodSchema<P extends z.ZodObject = z.ZodObject> {
  name: string;
  /** One line for rpc_get_methods-style listings and --help. */
  summary: string;
  params: P;
  /** vhostctl command lines shown in --help. */
  examples?: string[];
}

function method<P extends z.ZodObject>(name: string, summary: string, params: P, examples?: string[]): MethodSchema<P> {
  return { name, summary, params, examples };
}

const none = z.strictObject({});
const clearMethod = z.enum(['none', 'unmap', 'write_zeroes']);
const lvsSelector = z.strictObject({
  uuid: z.string().optional().describe('store UUID (or lvs_name)'),
  lvs_name: z.string().optional().describe('store name (or uuid)'),
});

export const METHOD_SCHEMAS = {
  rpc_get_methods: method(
    'rpc_get_methods',
    'List the supported RPC methods',
    z.strictObject({
      current: z.boolean().optional().describe('only methods callable in the current state'),
      include_aliases: z.boolean().optional().describe('include deprecated aliases'),
    }),
  ),
  spdk_get_version: method('spdk_get_version', 'Version of the target', none),
  framework_wait_init: method('framework_wait_init', 'Wait until subsystems are initialized (immediate)', none),
  framework_get_subsystems: method('framework_get_subsystems', 'List the subsystems and their dependencies', none),
  framework_get_config: method(
    'framework_get_config',
    "A subsystem's configuration as a list of RPC calls",
    z.strictObject({ name: z.string().describe('subsystem: bdev, vhost_scsi or vhost_blk') }),
    ['vhostctl framework_get_config --name bdev'],
  ),
  save_config: method('save_config', 'The whole configuration, in the format vhostd -c loads', none, ['vhostctl save_config > vhostd.json']),
  vhostd_reactor_gc_start: method(
    'vhostd_reactor_gc_start',
    "Start a GC window on every reactor thread (restarts a running one); vhostd's own method",
    none,
    ['vhostctl vhostd_reactor_gc_start'],
  ),
  vhostd_reactor_gc_stop: method(
    'vhostd_reactor_gc_stop',
    "End the reactors' GC windows: per reactor, collections, GC pause, heap growth and bytes allocated since vhostd_reactor_gc_start",
    none,
    ['vhostctl vhostd_reactor_gc_stop'],
  ),
  bdev_malloc_create: method(
    'bdev_malloc_create',
    'Create a RAM bdev; returns its name',
    z.strictObject({
      name: z.string().optional().describe('bdev name (default MallocN)'),
      uuid: z.string().optional().describe('UUID (default: random)'),
      num_blocks: uint64.describe('number of blocks'),
      block_size: uint32.describe('block size in bytes (multiple of 512)'),
      physical_block_size: uint32.optional().describe('physical block size in bytes (default: block_size)'),
      optimal_io_boundary: uint32.optional().describe('optimal I/O boundary in blocks (0: none)'),
      md_size: uint32.optional().describe('metadata size (only 0 is supported)'),
      md_interleave: z.boolean().optional().describe('interleaved metadata (no effect without metadata)'),
      dif_type: int32.optional().describe('protection information type (only 0 is supported)'),
      dif_is_head_of_md: z.boolean().optional().describe('protection information at the head of metadata (no effect)'),
    }),
    ['vhostctl bdev_malloc_create --name m0 --num_blocks 131072 --block_size 512'],
  ),
  bdev_malloc_delete: method('bdev_malloc_delete', 'Delete a RAM bdev', z.strictObject({ name: z.string().describe('bdev name') }), [
    'vhostctl bdev_malloc_delete --name m0',
  ]),
  bdev_null_create: method(
    'bdev_null_create',
    'Create a null bdev (reads return nothing, writes are discarded); returns its name',
    z.strictObject({
      name: z.string().describe('bdev name'),
      uuid: z.string().optional().describe('UUID (default: random)'),
      num_blocks: uint64.describe('number of blocks'),
      block_size: uint32.describe('block size in bytes (multiple of 512)'),
      physical_block_size: uint32.optional().describe('physical block size in bytes (default: block_size)'),
      md_size: uint32.optional().describe('metadata size (only 0 is supported)'),
      dif_type: int32.optional().describe('protection information type (only 0 is supported)'),
      dif_is_head_of_md: z.boolean().optional().describe('protection information at the head of metadata (no effect)'),
    }),
    ['vhostctl bdev_null_create --name n0 --num_blocks 2097152 --block_size 4096'],
  ),
  bdev_null_delete: method('bdev_null_delete', 'Delete a null bdev', z.strictObject({ name: z.string().describe('bdev name') })),
  bdev_uring_create: method(
    'bdev_uring_create',
    'Create a bdev on a file or block device, driven through io_uring; returns its name',
    z.strictObject({
      name: z.string().describe('bdev name'),
      filename: z.string().describe('path of a regular file or block device'),
      block_size: uint32.optional().describe("block size in bytes (default: the device's logical block size, 512 for files)"),
      uuid: z.string().optional().describe('UUID (default: random)'),
      mmap: z
        .boolean()
        .optional()
        .describe('vhostd: map a fully allocated file on tmpfs or ramfs, guarded by a file lease (default true); false: read/write calls only'),
    }),
    ['vhostctl bdev_uring_create --name u0 --filename /var/lib/vhostd/disk0.img --block_size 4096'],
  ),
  bdev_uring_delete: method('bdev_uring_delete', 'Delete a uring bdev', z.strictObject({ name: z.string().describe('bdev name') })),
  bdev_aio_create: method(
    'bdev_aio_create',
    'Create a bdev on a file or block device (SPDK aio; served by the io_uring engine here); returns its name',
    z.strictObject({
      name: z.string().describe('bdev name'),
      filename: z.string().describe('path of a regular file or block device'),
      block_size: uint32.optional().describe("block size in bytes (default: the device's logical block size, 512 for files)"),
      readonly: z.boolean().optional().describe('open read-only; writes fail'),
      fallocate: z.boolean().optional().describe('support unmap and write-zeroes through fallocate(2)'),
      uuid: z.string().optional().describe('UUID (default: random)'),
      mmap: z
        .boolean()
        .optional()
        .describe('vhostd: map a fully allocated file on tmpfs or ramfs, guarded by a file lease (default true); false: read/write calls only'),
    }),
    ['vhostctl bdev_aio_create --name a0 --filename /dev/sdb'],
  ),
  bdev_aio_delete: method('bdev_aio_delete', 'Delete an aio bdev', z.strictObject({ name: z.string().describe('bdev name') })),
  bdev_nbd_client_create: method(
    'bdev_nbd_client_create',
    'vhostd: attach an export of an NBD server (qemu-nbd, nbdkit) as a bdev, over a Unix socket or TCP; returns its name',
    z.strictObject({
      name: z.string().describe('bdev name'),
      socket: z.string().optional().describe('Unix socket of the server (or host and port)'),
      host: z.string().optional().describe('IP address or host name of the server (with port)'),
      port: z.number().int().min(1).max(65535).optional().describe('TCP port of the server (default 10809 with host)'),
      export_name: z.string().optional().describe('export to attach (default "": the default export)'),
      block_size: uint32.optional().describe("block size in bytes (default 512, or the export's minimum block when larger)"),
      readonly: z.boolean().optional().describe('writes fail (also when the server exports read-only)'),
      uuid: z.string().optional().describe('UUID (default: random)'),
      connect_timeout_sec: z.number().min(0.1).max(3600).optional().describe('connect plus handshake of one attempt (default 10)'),
      reconnect_delay_sec: z.number().min(0).max(3600).optional().describe('between reconnect attempts after the connection dropped (default 1)'),
      fast_io_fail_timeout_sec: z
        .number()
        .min(0)
        .max(3600)
        .optional()
        .describe('without a connection this long, held I/O fails with EIO and new I/O fails at once until reconnected (default 30; 0 = hold I/O forever)'),
      io_timeout_sec: z.number().min(0).max(3600).optional().describe('a connected server that answers nothing this long is reconnected and the requests resent (default 30; 0 = never)'),
    }),
    [
      'vhostctl bdev_nbd_client_create --name nbd0 --socket /run/nbd/disk.sock',
      'vhostctl bdev_nbd_client_create --name nbd1 --host 127.0.0.1 --port 10809 --export_name disk1',
    ],
  ),
  bdev_nbd_client_delete: method('bdev_nbd_client_delete', 'vhostd: detach an NBD bdev (its connections close)', z.strictObject({ name: z.string().describe('bdev name') })),
  bdev_rbd_register_cluster: method(
    'bdev_rbd_register_cluster',
    'Connect to a Ceph cluster once (a rados context) for the RBD bdevs that name it; returns its name',
    z.strictObject({
      name: z.string().describe('cluster name, given to bdev_rbd_create as cluster_name'),
      user_id: z.string().optional().describe('Ceph user without "client." (default admin)'),
      config_param: z.record(z.string(), z.string()).optional().describe('Ceph options, e.g. {"mon_host": "10.0.0.1:6789", "key": "..."}'),
      config_file: z.string().optional().describe('ceph.conf to read (default: $CEPH_CONF, /etc/ceph/ceph.conf if present)'),
      key_file: z.string().optional().describe('keyring file of the user'),
      core_mask: z.string().optional().describe("CPUs for librados' threads, e.g. 0x3 (default: any)"),
    }),
    [
      'vhostctl bdev_rbd_register_cluster --name ceph0 --config_file /etc/ceph/ceph.conf --user_id admin',
      'vhostctl bdev_rbd_register_cluster --name ceph1 --config_param \'{"mon_host":"127.0.0.1:3300"}\'',
    ],
  ),
  bdev_rbd_unregister_cluster: method(
    'bdev_rbd_unregister_cluster',
    'Disconnect a registered Ceph cluster (refused while RBD bdevs use it)',
    z.strictObject({ name: z.string().describe('cluster name') }),
  ),
  bdev_rbd_get_clusters_info: method(
    'bdev_rbd_get_clusters_info',
    'Registered Ceph clusters: one (by name) or all',
    z.strictObject({ name: z.string().optional().describe('cluster name (default: all)') }),
  ),
  bdev_rbd_create: method(
    'bdev_rbd_create',
    'Attach a Ceph RBD image as a bdev; returns its name',
    z.strictObject({
      name: z.string().optional().describe('bdev name (default Ceph0, Ceph1, ...)'),
      pool_name: z.string().describe('pool of the image'),
      rbd_name: z.string().describe('image name'),
      block_size: uint32.optional().describe('block size in bytes (default 512)'),
      user_id: z.string().optional().describe('Ceph user without "client." (default admin); not with cluster_name'),
      config: z.record(z.string(), z.string()).optional().describe('Ceph options for a connection of this bdev alone; not with cluster_name'),
      cluster_name: z.string().optional().describe('a cluster registered by bdev_rbd_register_cluster (shared connection)'),
      uuid: z.string().optional().describe('UUID (default: random)'),
    }),
    ['vhostctl bdev_rbd_create --name rbd0 --pool_name rbd --rbd_name disk0 --cluster_name ceph0'],
  ),
  bdev_rbd_delete: method('bdev_rbd_delete', 'Detach an RBD bdev (the image is closed, not removed)', z.strictObject({ name: z.string().describe('bdev name') })),
  bdev_rbd_resize: method(
    'bdev_rbd_resize',
    'Grow an RBD image and its bdev; the guest sees the new capacity',
    z.strictObject({ name: z.string().describe('bdev name'), new_size: uint64.describe('new size in MiB (larger than the current one)') }),
    ['vhostctl bdev_rbd_resize --name rbd0 --new_size 2048'],
  ),
  bdev_nvme_attach_controller: method(
    'bdev_nvme_attach_controller',
    'Attach an NVMe-oF controller over TCP (NVMe/TCP initiator); each namespace becomes a bdev <name>n<nsid>; returns their names',
    z.strictObject({
      name: z.string().describe('controller name (bdevs are <name>n1, <name>n2, ...)'),
      trtype: z.string().describe('transport: TCP (PCIe and RDMA are not supported)'),
      traddr: z.string().describe('target address: an IP address or a host name'),
      adrfam: z.string().optional().describe('IPv4 or IPv6 (default IPv4)'),
      trsvcid: z.string().optional().describe('target TCP port (default 4420)'),
      priority: z.string().optional().describe('accepted for SPDK compatibility (no multipath)'),
      subnqn: z.string().optional().describe('NQN of the subsystem to connect to (required)'),
      hostnqn: z.string().optional().describe('host NQN (default nqn.2014-08.org.nvmexpress:uuid:<random UUID>, kept by save_config)'),
      hostaddr: z.string().optional().describe('source address (not supported: give none)'),
      hostsvcid: z.string().optional().describe('source port (not supported: give none)'),
      prchk_reftag: z.boolean().optional().describe('protection information reference tag check (not supported: false)'),
      prchk_guard: z.boolean().optional().describe('protection information guard check (not supported: false)'),
      hdgst: z.boolean().optional().describe('header digest (CRC32C of every PDU header; default false)'),
      ddgst: z.boolean().optional().describe('data digest (CRC32C of every data PDU; default false)'),
      fabrics_connect_timeout_us: uint64.optional().describe('connect and setup of each queue, microseconds (default 10 s)'),
      multipath: z.string().optional().describe('disable (the only mode: a second attach under one name is refused)'),
      num_io_queues: z.number().int().min(1).max(1023).optional().describe('I/O queues to ask for (default 1023); each reactor channel of a namespace uses one'),
      ctrlr_loss_timeout_sec: z.number().int().min(-1).max(0x7fffffff).optional().describe('keep reconnecting this long after a loss (-1 forever, 0 one attempt); default -1 when no timeout is given'),
      reconnect_delay_sec: uint32.optional().describe('between reconnect attempts (default 1 when no timeout is given, else 0)'),
      fast_io_fail_timeout_sec: uint32.optional().describe('held I/O fails with EIO after this long without the controller (default 30 when no timeout is given; 0 = hold)'),
      psk: z.string().optional().describe('TLS pre-shared key (not supported)'),
      max_bdevs: uint32.optional().describe('fail if the controller has more namespaces than this'),
      io_queue_size: z.number().int().min(2).max(1024).optional().describe('vhostd: entries per I/O queue (default 128, capped by the controller)'),
      keep_alive_timeout_ms: uint32.optional().describe('vhostd: Keep Alive Timeout given to the controller (default 10000; 0 = none)'),
    }),
    [
      'vhostctl bdev_nvme_attach_controller --name nvme0 --trtype TCP --traddr 127.0.0.1 --trsvcid 4420 --subnqn nqn.2016-06.io.spdk:cnode1',
      'vhostctl bdev_nvme_attach_controller --name nvme1 --trtype tcp --traddr 10.0.0.5 --subnqn nqn.2024-01.com.example:disk7 --ctrlr_loss_timeout_sec 120 --reconnect_delay_sec 2 --fast_io_fail_timeout_sec 10',
    ],
  ),
  bdev_nvme_detach_controller: method(
    'bdev_nvme_detach_controller',
    'Detach an NVMe controller and remove its namespace bdevs (refused while a controller of vhostd uses one)',
    z.strictObject({
      name: z.string().describe('controller name'),
      trtype: z.string().optional().describe('only if the controller has this transport'),
      traddr: z.string().optional().describe('only if the controller has this address'),
      adrfam: z.string().optional().describe('only if the controller has this address family'),
      trsvcid: z.string().optional().describe('only if the controller has this port'),
      subnqn: z.string().optional().describe('only if the controller has this subsystem NQN'),
      hostaddr: z.string().optional().describe('accepted for SPDK compatibility'),
      hostsvcid: z.string().optional().describe('accepted for SPDK compatibility'),
    }),
    ['vhostctl bdev_nvme_detach_controller --name nvme0'],
  ),
  bdev_nvme_get_controllers: method(
    'bdev_nvme_get_controllers',
    'Attached NVMe controllers: one (by name) or all, with state, controller ID, queues and reconnect counters',
    z.strictObject({ name: z.string().optional().describe('controller name (default: all)') }),
  ),
  bdev_delay_create: method(
    'bdev_delay_create',
    'Create a delay bdev over a base bdev (claims it): reads and writes complete after the given latency; returns its name',
    z.strictObject({
      base_bdev_name: z.string().describe('bdev to delay'),
      name: z.string().describe('name of the delay bdev'),
      avg_read_latency: uint64.describe('read latency in microseconds'),
      nine_nine_read_latency: uint64.describe('p99 read latency in microseconds (accepted; every read takes the average)'),
      avg_write_latency: uint64.describe('write latency in microseconds'),
      nine_nine_write_latency: uint64.describe('p99 write latency in microseconds (accepted; every write takes the average)'),
      uuid: z.string().optional().describe('UUID (default: random)'),
    }),
    ['vhostctl bdev_delay_create --base_bdev_name m0 --name d0 --avg_read_latency 100 --nine_nine_read_latency 100 --avg_write_latency 100 --nine_nine_write_latency 100'],
  ),
  bdev_delay_delete: method('bdev_delay_delete', 'Delete a delay bdev (its base bdev stays)', z.strictObject({ name: z.string().describe('bdev name') })),
  bdev_null_resize: method(
    'bdev_null_resize',
    'Resize a null bdev; attached VMs see the new capacity (virtio-blk config change, SCSI capacity-changed event)',
    z.strictObject({ name: z.string().describe('bdev name'), new_size: uint64.describe('new size in MiB') }),
    ['vhostctl bdev_null_resize --name n0 --new_size 2048'],
  ),
  bdev_get_bdevs: method(
    'bdev_get_bdevs',
    'Describe all bdevs, or one',
    z.strictObject({
      name: z.string().optional().describe('bdev name, alias or UUID'),
      timeout: uint64.optional().describe('milliseconds to wait for the bdev to appear'),
    }),
    ['vhostctl bdev_get_bdevs', 'vhostctl bdev_get_bdevs --name m0 --timeout 1000'],
  ),
  bdev_wait_for_examine: method('bdev_wait_for_examine', 'Wait until every bdev has been examined (lvol stores on it loaded)', none),
  bdev_lvol_create_lvstore: method(
    'bdev_lvol_create_lvstore',
    'Create a logical volume store on a bdev (claims it); returns the store UUID',
    z.strictObject({
      bdev_name: z.string().describe('base bdev'),
      lvs_name: z.string().describe('store name (at most 63 characters)'),
      cluster_sz: uint32.optional().describe('cluster size in bytes, a power of two >= 4096 (default 4 MiB)'),
      clear_method: clearMethod.optional().describe('how the data area is cleared: none, unmap (default) or write_zeroes'),
      num_md_pages_per_cluster_ratio: uint32.optional().describe('metadata pages per 100 clusters (default 100)'),
    }),
    ['vhostctl bdev_lvol_create_lvstore --bdev_name u0 --lvs_name lvs0'],
  ),
  bdev_lvol_delete_lvstore: method(
    'bdev_lvol_delete_lvstore',
    'Delete a logical volume store and all its lvols (none may be attached to a controller)',
    lvsSelector,
    ['vhostctl bdev_lvol_delete_lvstore --lvs_name lvs0'],
  ),
  bdev_lvol_get_lvstores: method(
    'bdev_lvol_get_lvstores',
    'Describe all logical volume stores, or one',
    z.strictObject({
      uuid: z.string().optional().describe('store UUID'),
      lvs_name: z.string().optional().describe('store name'),
    }),
  ),
  bdev_lvol_rename_lvstore: method(
    'bdev_lvol_rename_lvstore',
    'Rename a logical volume store (the aliases of its lvols follow)',
    z.strictObject({ old_name: z.string().describe('current store name'), new_name: z.string().describe('new store name') }),
  ),
  bdev_lvol_grow_lvstore: method(
    'bdev_lvol_grow_lvstore',
    'Grow a logical volume store onto its base bdev after the bdev grew',
    lvsSelector,
  ),
  bdev_lvol_create: method(
    'bdev_lvol_create',
    'Create a logical volume; returns its bdev name (a UUID; alias lvs_name/lvol_name)',
    z.strictObject({
      lvol_name: z.string().describe('lvol name, unique in its store'),
      size_in_mib: uint64.optional().describe('size in MiB, rounded up to whole clusters'),
      size: uint64.optional().describe('size in bytes (deprecated in SPDK: use size_in_mib)'),
      thin_provision: z.boolean().optional().describe('allocate clusters on first write (default false)'),
      uuid: z.string().optional().describe('UUID of the store (or lvs_name)'),
      lvs_name: z.string().optional().describe('name of the store (or uuid)'),
      clear_method: clearMethod.optional().describe('how its clusters are cleared when deleted: none, unmap (default) or write_zeroes'),
    }),
    ['vhostctl bdev_lvol_create --lvs_name lvs0 --lvol_name vm1 --size_in_mib 10240 --thin_provision true'],
  ),
  bdev_lvol_snapshot: method(
    'bdev_lvol_snapshot',
    'Take a read-only snapshot of an lvol (I/O in flight drains first); the lvol becomes its clone',
    z.strictObject({ lvol_name: z.string().describe('lvol: bdev name, UUID or lvs/lvol'), snapshot_name: z.string().describe('snapshot name') }),
    ['vhostctl bdev_lvol_snapshot --lvol_name lvs0/vm1 --snapshot_name vm1-monday'],
  ),
  bdev_lvol_clone: method(
    'bdev_lvol_clone',
    'Create a thin writable clone of a snapshot; returns its bdev name',
    z.strictObject({ snapshot_name: z.string().describe('snapshot: bdev name, UUID or lvs/snapshot'), clone_name: z.string().describe('clone name') }),
    ['vhostctl bdev_lvol_clone --snapshot_name lvs0/vm1-monday --clone_name vm2'],
  ),
  bdev_lvol_rename: method(
    'bdev_lvol_rename',
    'Rename an lvol',
    z.strictObject({ old_name: z.string().describe('lvol: bdev name, UUID or lvs/lvol'), new_name: z.string().describe('new lvol name') }),
  ),
  bdev_lvol_resize: method(
    'bdev_lvol_resize',
    'Resize an lvol (attached VMs see the new capacity)',
    z.strictObject({
      name: z.string().describe('lvol: bdev name, UUID or lvs/lvol'),
      size_in_mib: uint64.optional().describe('new size in MiB'),
      size: uint64.optional().describe('new size in bytes (deprecated in SPDK)'),
    }),
  ),
  bdev_lvol_set_read_only: method(
    'bdev_lvol_set_read_only',
    'Make an lvol read-only (irreversible; it can then be cloned)',
    z.strictObject({ name: z.string().describe('lvol: bdev name, UUID or lvs/lvol') }),
  ),
  bdev_lvol_delete: method(
    'bdev_lvol_delete',
    'Delete an lvol; a snapshot with one clone is merged into it',
    z.strictObject({ name: z.string().describe('lvol: bdev name, UUID or lvs/lvol') }),
  ),
  bdev_lvol_inflate: method(
    'bdev_lvol_inflate',
    'Allocate every cluster of a thin lvol or clone (copying from its snapshots); it then has no parent. Progress: vhostd_get_operations',
    z.strictObject({ name: z.string().describe('lvol: bdev name, UUID or lvs/lvol') }),
  ),
  bdev_lvol_decouple_parent: method(
    'bdev_lvol_decouple_parent',
    "Copy the clusters a clone reads from its parent snapshot; the parent's parent becomes its parent. Progress: vhostd_get_operations",
    z.strictObject({ name: z.string().describe('lvol: bdev name, UUID or lvs/lvol') }),
  ),
  bdev_lvol_get_lvols: method(
    'bdev_lvol_get_lvols',
    'Describe the lvols of all stores, or of one',
    z.strictObject({
      lvs_uuid: z.string().optional().describe('store UUID'),
      lvs_name: z.string().optional().describe('store name'),
    }),
  ),
  vhostd_get_operations: method(
    'vhostd_get_operations',
    'Long operations (inflate, decouple, clearing) running or recently finished, with their progress',
    z.strictObject({ id: uint32.optional().describe('one operation') }),
    ['vhostctl vhostd_get_operations'],
  ),
  vhost_create_scsi_controller: method(
    'vhost_create_scsi_controller',
    'Create a vhost-user SCSI controller (socket <socket dir>/<ctrlr>)',
    z.strictObject({
      ctrlr: z.string().describe('controller name'),
      cpumask: z.string().optional().describe('CPUs it may run on (e.g. 0x3 or [0,1])'),
      delay: z.boolean().optional().describe('do not start until targets are added (SPDK 24.01; not supported)'),
    }),
    ['vhostctl vhost_create_scsi_controller --ctrlr vhost.0'],
  ),
  vhost_create_blk_controller: method(
    'vhost_create_blk_controller',
    'Create a vhost-user-blk controller (socket <socket dir>/<ctrlr>) serving one bdev',
    z.strictObject({
      ctrlr: z.string().describe('controller name'),
      dev_name: z.string().describe('bdev to serve'),
      cpumask: z.string().optional().describe('CPUs it may run on (e.g. 0x3 or [0,1])'),
      readonly: z.boolean().optional().describe('refuse writes and advertise VIRTIO_BLK_F_RO'),
      packed_ring: z.boolean().optional().describe('offer packed virtqueues (VIRTIO_F_RING_PACKED)'),
    }),
    ['vhostctl vhost_create_blk_controller --ctrlr vhost.1 --dev_name m0', 'vhostctl vhost_create_blk_controller --ctrlr ro.0 --dev_name m0 --readonly true'],
  ),
  vhost_controller_set_coalescing: method(
    'vhost_controller_set_coalescing',
    'Coalesce guest interrupts of a controller: above iops_threshold per queue, at most one per delay_base_us',
    z.strictObject({
      ctrlr: z.string().describe('controller name'),
      delay_base_us: uint64.describe('minimum microseconds between interrupts of a busy queue (0 = off)'),
      iops_threshold: uint64.describe('per-queue IOPS above which coalescing applies'),
    }),
    ['vhostctl vhost_controller_set_coalescing --ctrlr vhost.0 --delay_base_us 50 --iops_threshold 60000'],
  ),
  vhost_scsi_controller_add_target: method(
    'vhost_scsi_controller_add_target',
    'Attach a bdev as LUN 0 of a SCSI target; returns the target number',
    z.strictObject({
      ctrlr: z.string().describe('controller name'),
      scsi_target_num: int32.describe('target number, -1 for the first free one'),
      bdev_name: z.string().describe('bdev to attach'),
    }),
    ['vhostctl vhost_scsi_controller_add_target --ctrlr vhost.0 --scsi_target_num 0 --bdev_name m0'],
  ),
  vhost_scsi_controller_remove_target: method(
    'vhost_scsi_controller_remove_target',
    'Detach a SCSI target',
    z.strictObject({
      ctrlr: z.string().describe('controller name'),
      scsi_target_num: uint32.describe('target number'),
    }),
  ),
  vhost_get_controllers: method(
    'vhost_get_controllers',
    'Describe all controllers, or one',
    z.strictObject({ name: z.string().optional().describe('controller name') }),
  ),
  vhost_delete_controller: method('vhost_delete_controller', 'Delete a controller', z.strictObject({ ctrlr: z.string().describe('controller name') })),
} satisfies Record<string, MethodSchema>;

export type MethodName = keyof typeof METHOD_SCHEMAS;
export type MethodParams<N extends MethodName> = z.infer<(typeof METHOD_SCHEMAS)[N]['params']>;

export type ParamKind = 'string' | 'number' | 'boolean' | 'json';

export interface ParamField {
  name: string;
  kind: ParamKind;
  required: boolean;
  description: string;
}

/** The fields of a method's params schema, for help text and command-line coercion. */
export function paramFields(schema: z.ZodObject): ParamField[] {
  return Object.entries(schema.shape).map(([name, field]) => {
    let t = field as z.ZodType;
    let description = t.description;
    const required = !t.safeParse(undefined).success;
    for (;;) {
      const def = t.def as { type: string; innerType?: z.ZodType };
      if ((def.type === 'optional' || def.type === 'default' || def.type === 'nullable') && def.innerType) {
        t = def.innerType;
        description ??= t.description;
        continue;
      }
      break;
    }
    const type = t.def.type;
    const kind: ParamKind = type === 'string' ? 'string' : type === 'number' ? 'number' : type === 'boolean' ? 'boolean' : 'json';
    return { name, kind, required, description: description ?? '' };
  });
}
