// vhostd: the daemon. Parses options, starts reactors, the RPC server and the configured controllers.
import { Command, Option, InvalidArgumentError } from 'commander';
import { mkdirSync, existsSync } from 'node:fs';
import { resolve, join } from 'node:path';
import { componentLogger, LOG_FORMATS, resolveLogFormat, setLogFormat, setLogLevel, type LogFormat } from '../log/logger.ts';
import { parseCpumask } from '../reactor/cpumask.ts';
import { POLL_MODES, type PollMode } from '../reactor/poll-mode.ts';
import { ReactorPool } from '../reactor/reactor-pool.ts';
import { BdevRegistry } from '../bdev/bdev-registry.ts';
import { LvolModule } from '../lvol/lvol-module.ts';
import { ControllerRegistry } from '../controller/controller-registry.ts';
import { createRpcServer } from '../rpc/rpc-server.ts';
import { loadConfig } from '../rpc/config-file.ts';
import { MALLOC_HUGEPAGES_MODES, type MallocHugepages } from '../bdev/modules/malloc.ts';
import { DEFAULT_CTRLR, DEFAULT_SIZE_MIB, defaultConfigCalls, qemuCommandLine } from './embedded-default.ts';
import { VERSION } from './version.ts';
import { shutdownRbdClusters } from '../bdev/modules/rbd-cluster.ts';
import { shutdownNvmeControllers } from '../bdev/modules/nvme-controller.ts';
import { hardExit } from '../sys/hard-exit.ts';

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

const program = new Command('vhostd')
  .description(
    'vhostd: a vhost-user storage target. Serves virtio-scsi disks to VMs over vhost-user sockets,\n' +
      'configured over JSON-RPC with SPDK method names (vhostctl or SPDK rpc.py).\n\n' +
      `With no configuration it starts a ${DEFAULT_SIZE_MIB} MiB RAM disk (Malloc0) on controller ${DEFAULT_CTRLR}\n` +
      'and prints the QEMU command line that attaches a VM to it.',
  )
  .version(VERSION)
  .option('-r, --rpc-socket <path>', 'JSON-RPC Unix socket', '/var/tmp/vhostd.sock')
  .option('-S, --socket-dir <dir>', 'directory for controller sockets (<dir>/<ctrlr>)', '/var/tmp')
  .option('-c, --json <file>', 'JSON config to load at start (the format save_config writes); replaces the embedded default')
  .option('-m, --cpumask <mask>', 'CPUs for reactor threads, one reactor per CPU (hex 0x3 or list [0,1])', '0x1')
  .addOption(new Option('--poll-mode <mode>', 'how reactors wait: poll (spin), adaptive (spin while busy, then sleep), interrupt').choices(POLL_MODES).default('adaptive'))
  .option('--no-pin', 'do not pin reactor threads to their CPUs')
  .option('--no-default', 'start with no bdev and no controller (only the RPC server)')
  .option('--default-size <MiB>', 'size of the embedded default RAM disk', positiveInt, DEFAULT_SIZE_MIB)
  .addOption(
    new Option('--malloc-hugepages <mode>', 'RAM disks (bdev_malloc_create) on 2 MiB huge pages, taken at create: auto (when enough are free), on (or fail), off')
      .choices(MALLOC_HUGEPAGES_MODES)
      .default('auto'),
  )
  .addOption(new Option('--log-level <level>', 'log level').choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'))
  .addOption(
    new Option('--log-format <format>', 'log lines on stderr: pretty (one readable line each), json (JSON lines, for log collectors), auto (pretty on a terminal, else json)')
      .choices(LOG_FORMATS)
      .default('auto'),
  )
  .addHelpText(
    'after',
    `
Examples:
  vhostd                                   RAM disk on /var/tmp/${DEFAULT_CTRLR}, RPC on /var/tmp/vhostd.sock
  vhostd --no-default -S /run/vhostd       empty; configure with vhostctl:
      vhostctl bdev_malloc_create --name m0 --num_blocks 262144 --block_size 512
      vhostctl vhost_create_scsi_controller --ctrlr vhost.1
      vhostctl vhost_scsi_controller_add_target --ctrlr vhost.1 --scsi_target_num 0 --bdev_name m0
  vhostd -c saved.json                     restore what 'vhostctl save_config > saved.json' wrote

Logs go to stderr: readable lines on a terminal, JSON lines otherwise (--log-format json or pretty
to choose; NO_COLOR turns colours off). SIGTERM/SIGINT close sockets, disconnect VMs and exit.`,
  );

program.parse();
const opts = program.opts<{
  rpcSocket: string;
  socketDir: string;
  json?: string;
  cpumask: string;
  pollMode: PollMode;
  pin: boolean;
  default: boolean;
  defaultSize: number;
  mallocHugepages: MallocHugepages;
  logLevel: string;
  logFormat: LogFormat;
}>();

setLogLevel(opts.logLevel);
const stderrIsTty = process.stderr.isTTY === true;
const logFormat = resolveLogFormat(opts.logFormat, stderrIsTty);
// NO_COLOR (no-color.org): any non-empty value turns colours off.
setLogFormat(logFormat, logFormat === 'pretty' && stderrIsTty && !process.env.NO_COLOR);
const log = componentLogger('vhostd');

async function main(): Promise<void> {
  let cpus: number[] = [];
  try {
    cpus = parseCpumask(opts.cpumask);
  } catch (e) {
    program.error(`vhostd: ${(e as Error).message}`);
  }
  const socketDir = resolve(opts.socketDir);
  if (!existsSync(socketDir)) mkdirSync(socketDir, { recursive: true });
  const reactors = new ReactorPool(cpus, opts.pollMode, componentLogger('reactor'), opts.pin);
  const bdevs = new BdevRegistry();
  const vhost = new ControllerRegistry(socketDir, reactors, bdevs, componentLogger('vhost'));
  const lvols = new LvolModule(bdevs);
  const init = Promise.withResolvers<void>();
  const rpc = createRpcServer({
    socketPath: resolve(opts.rpcSocket), bdevs, vhost, lvols, reactors, initDone: init.promise, mallocHugepages: opts.mallocHugepages,
  });

  let stopping = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    await rpc.close().catch(() => {});
    await vhost.closeAll();
    // Clean unload: the next start loads the stores without a metadata replay.
    await lvols.unloadAll();
    for (const b of bdevs.list()) {
      try {
        bdevs.unregister(b.name);
      } catch (e) {
        log.warn({ bdev: b.name, err: e }, 'bdev not removed at shutdown');
      }
    }
    await reactors.stop();
    // RBD images close and clusters disconnect; one out of reach would hold the exit forever.
    // NVMe controllers are told of the shutdown (their targets free them at once) and closed.
    if (!(await shutdownNvmeControllers(3000))) log.warn('an NVMe target did not answer the shutdown notification within 3 s');
    const clean = await shutdownRbdClusters(5000);
    log.info('stopped');
    if (!clean) hardExit(0);
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  await rpc.start();
  if (opts.json) {
    await loadConfig(resolve(opts.json), (method: string, params: unknown) => rpc.call(method, params));
  } else if (opts.default) {
    for (const c of defaultConfigCalls(opts.defaultSize)) await rpc.call(c.method, c.params);
    const sock = join(socketDir, DEFAULT_CTRLR);
    process.stdout.write(
      `vhostd ${VERSION}: ${opts.defaultSize} MiB RAM disk Malloc0 on vhost-user-scsi controller ${DEFAULT_CTRLR}\n` +
        `  controller socket: ${sock}\n  RPC socket:        ${resolve(opts.rpcSocket)}\n\n` +
        `Attach a VM with:\n${qemuCommandLine(sock)}\n\n` +
        `Inspect with: npx vhostctl -s ${resolve(opts.rpcSocket)} vhost_get_controllers\n`,
    );
  }
  init.resolve();
  log.info({ rpc: resolve(opts.rpcSocket), socketDir, cpus, pollMode: opts.pollMode }, 'vhostd ready');
}

main().catch((e: unknown) => {
  const err = e as { code?: string; message?: string };
  process.stderr.write(`vhostd: ${err.message ?? String(e)}${err.code ? ` (${err.code})` : ''}\n`);
  process.exit(1);
});
