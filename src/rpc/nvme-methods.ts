// bdev_nvme_attach_controller / detach_controller / get_controllers: SPDK's names and
// parameters, for NVMe/TCP (the one transport vhostd's initiator speaks).
import { randomUUID } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { BdevRegistry } from '../bdev/bdev-registry.ts';
import { NvmeController, hostidFor, type NvmeControllerOptions, type NvmeControllerRegistry } from '../bdev/modules/nvme-controller.ts';
import { NvmeError } from '../bdev/modules/nvme-error.ts';
import { NvmeBdev, NVME_MODULE } from '../bdev/modules/nvme.ts';
import { checkNqn } from '../bdev/modules/nvme-spec.ts';
import { componentLogger } from '../log/logger.ts';
import type { MethodTable } from './method-table.ts';

const log = componentLogger('bdev_nvme');

export const NVME_TCP_DEFAULT_PORT = '4420';
const DEFAULT_RESILIENCY = { ctrlrLossTimeoutSec: -1, reconnectDelaySec: 1, fastIoFailTimeoutSec: 30 };

const invalid = (msg: string): NvmeError => new NvmeError('NVME_INVALID_PARAM', msg, 22);
const unsupported = (msg: string): NvmeError => new NvmeError('NVME_UNSUPPORTED', msg, 95);

/** SPDK's rules for the three reconnect timeouts (bdev_nvme_check_io_error_resiliency_params). */
export function checkResiliency(loss: number, delay: number, fastFail: number): void {
  if (loss < -1) throw invalid(`ctrlr_loss_timeout_sec ${loss}: -1 (forever), 0 or a number of seconds`);
  if (loss === 0) {
    if (delay !== 0 || fastFail !== 0) throw invalid('with ctrlr_loss_timeout_sec 0 (no reconnect), reconnect_delay_sec and fast_io_fail_timeout_sec must be 0');
    return;
  }
  if (delay === 0) throw invalid(`ctrlr_loss_timeout_sec ${loss} needs a reconnect_delay_sec above 0`);
  if (loss > 0 && delay > loss) throw invalid(`reconnect_delay_sec ${delay} is longer than ctrlr_loss_timeout_sec ${loss}`);
  if (fastFail !== 0) {
    if (loss > 0 && fastFail > loss) throw invalid(`fast_io_fail_timeout_sec ${fastFail} is longer than ctrlr_loss_timeout_sec ${loss}`);
    if (fastFail < delay) throw invalid(`fast_io_fail_timeout_sec ${fastFail} is shorter than reconnect_delay_sec ${delay}`);
  }
}

function adrfamOf(v: string | undefined): 'IPv4' | 'IPv6' {
  if (v === undefined) return 'IPv4';
  const l = v.toLowerCase();
  if (l === 'ipv4') return 'IPv4';
  if (l === 'ipv6') return 'IPv6';
  throw unsupported(`adrfam '${v}': IPv4 or IPv6 (TCP)`);
}

async function resolveAddress(traddr: string, adrfam: 'IPv4' | 'IPv6'): Promise<string> {
  const v = isIP(traddr);
  if (v !== 0) {
    if ((v === 6) !== (adrfam === 'IPv6')) throw invalid(`traddr ${traddr} is not an ${adrfam} address`);
    return traddr;
  }
  if (traddr === '') throw invalid('traddr: the target address');
  try {
    return (await lookup(traddr, { family: adrfam === 'IPv6' ? 6 : 4 })).address;
  } catch (e) {
    throw new NvmeError('NVME_CONNECT_FAILED', `cannot resolve traddr '${traddr}': ${(e as NodeJS.ErrnoException).code ?? String(e)}`, 6);
  }
}

interface AttachParams {
  name: string;
  trtype: string;
  traddr: string;
  adrfam?: string;
  trsvcid?: string;
  subnqn?: string;
  hostnqn?: string;
  hostaddr?: string;
  hostsvcid?: string;
  prchk_reftag?: boolean;
  prchk_guard?: boolean;
  hdgst?: boolean;
  ddgst?: boolean;
  fabrics_connect_timeout_us?: number;
  multipath?: string;
  num_io_queues?: number;
  ctrlr_loss_timeout_sec?: number;
  reconnect_delay_sec?: number;
  fast_io_fail_timeout_sec?: number;
  psk?: string;
  max_bdevs?: number;
  io_queue_size?: number;
  keep_alive_timeout_ms?: number;
}

/** Validates an attach call and turns it into controller options (the address still to resolve). */
export async function attachOptions(p: AttachParams): Promise<NvmeControllerOptions> {
  if (p.trtype.toUpperCase() !== 'TCP') throw unsupported(`trtype '${p.trtype}': vhostd's NVMe initiator speaks NVMe/TCP only`);
  if (p.psk !== undefined) throw unsupported('psk: NVMe/TCP over TLS is not supported');
  if (p.hostaddr !== undefined || p.hostsvcid !== undefined) throw unsupported('hostaddr/hostsvcid: choosing the source address is not supported');
  if (p.prchk_reftag || p.prchk_guard) throw unsupported('prchk_reftag/prchk_guard: namespaces with protection information are not supported');
  if (p.multipath !== undefined && p.multipath !== 'disable') throw unsupported(`multipath '${p.multipath}': only "disable" (one path per controller name)`);
  if (p.subnqn === undefined) throw invalid('subnqn: the NQN of the subsystem to attach (e.g. nqn.2016-06.io.spdk:cnode1)');
  const subErr = checkNqn(p.subnqn);
  if (subErr) throw invalid(`subnqn '${p.subnqn}': ${subErr}`);
  const hostnqn = p.hostnqn ?? `nqn.2014-08.org.nvmexpress:uuid:${randomUUID()}`;
  const hostErr = checkNqn(hostnqn);
  if (hostErr) throw invalid(`hostnqn '${hostnqn}': ${hostErr}`);
  const adrfam = adrfamOf(p.adrfam);
  const trsvcid = p.trsvcid ?? NVME_TCP_DEFAULT_PORT;
  const port = Number(trsvcid);
  if (!/^\d+$/.test(trsvcid) || port < 1 || port > 65535) throw invalid(`trsvcid '${trsvcid}': a TCP port, 1..65535`);
  const anyTimeout = p.ctrlr_loss_timeout_sec !== undefined || p.reconnect_delay_sec !== undefined || p.fast_io_fail_timeout_sec !== undefined;
  const loss = anyTimeout ? (p.ctrlr_loss_timeout_sec ?? 0) : DEFAULT_RESILIENCY.ctrlrLossTimeoutSec;
  const delay = anyTimeout ? (p.reconnect_delay_sec ?? 0) : DEFAULT_RESILIENCY.reconnectDelaySec;
  const fastFail = anyTimeout ? (p.fast_io_fail_timeout_sec ?? 0) : DEFAULT_RESILIENCY.fastIoFailTimeoutSec;
  checkResiliency(loss, delay, fastFail);
  const connectUs = p.fabrics_connect_timeout_us ?? 0;
  const host = await resolveAddress(p.traddr, adrfam);
  return {
    name: p.name,
    target: { kind: 'tcp', host, port },
    traddr: p.traddr,
    trsvcid,
    adrfam,
    subnqn: p.subnqn,
    hostnqn,
    hostid: hostidFor(hostnqn),
    headerDigest: p.hdgst === true,
    dataDigest: p.ddgst === true,
    numIoQueues: p.num_io_queues ?? 1023,
    ioQueueSize: p.io_queue_size ?? 128,
    ctrlrLossTimeoutSec: loss,
    reconnectDelaySec: delay,
    fastIoFailTimeoutSec: fastFail,
    connectTimeoutMs: connectUs > 0 ? Math.max(100, Math.round(connectUs / 1000)) : 10_000,
    keepAliveTimeoutMs: p.keep_alive_timeout_ms ?? 10_000,
  };
}

export function registerNvmeMethods(table: MethodTable, bdevs: BdevRegistry, ctrlrs: NvmeControllerRegistry): void {
  table.register('bdev_nvme_attach_controller', async (p) => {
    if (ctrlrs.get(p.name)) throw new NvmeError('NVME_CONTROLLER_EXISTS', `an NVMe controller named '${p.name}' already exists (multipath is not supported)`, 17);
    const opts = await attachOptions(p);
    const ctrlr = new NvmeController(opts);
    ctrlrs.add(ctrlr);
    try {
      await ctrlr.attach();
      if (ctrlr.namespaces.length === 0) throw new NvmeError('NVME_NO_NAMESPACES', `subsystem ${opts.subnqn} at ${p.traddr}:${opts.trsvcid} has no active namespace`, 19);
      if (p.max_bdevs !== undefined && ctrlr.namespaces.length > p.max_bdevs) {
        throw invalid(`the controller has ${ctrlr.namespaces.length} namespaces, more than max_bdevs ${p.max_bdevs}`);
      }
      const made = ctrlr.namespaces.map((ns) => new NvmeBdev(ctrlr, ns));
      for (const b of made) if (bdevs.get(b.name)) throw new NvmeError('NVME_CONTROLLER_EXISTS', `bdev name '${b.name}' already exists`, 17);
      const names: string[] = [];
      try {
        for (const b of made) {
          bdevs.register(b);
          names.push(b.name);
        }
      } catch (e) {
        for (const n of names) bdevs.unregister(n);
        throw e;
      }
      log.info({ ctrlr: ctrlr.name, target: `${p.traddr}:${opts.trsvcid}`, subnqn: opts.subnqn, cntlid: ctrlr.cntlid, bdevs: names }, 'NVMe/TCP controller attached');
      return names;
    } catch (e) {
      ctrlrs.remove(ctrlr.name);
      await ctrlr.detach();
      throw e;
    }
  });

  table.register('bdev_nvme_detach_controller', async (p) => {
    const c = ctrlrs.require(p.name);
    const o = c.options;
    const mismatch =
      (p.trtype !== undefined && p.trtype.toUpperCase() !== 'TCP') ||
      (p.traddr !== undefined && p.traddr !== o.traddr) ||
      (p.adrfam !== undefined && p.adrfam.toLowerCase() !== o.adrfam.toLowerCase()) ||
      (p.trsvcid !== undefined && p.trsvcid !== o.trsvcid) ||
      (p.subnqn !== undefined && p.subnqn !== o.subnqn);
    if (mismatch) throw new NvmeError('NVME_CONTROLLER_NOT_FOUND', `controller '${p.name}' has no path matching the given transport ID`, 19);
    const mine = bdevs.list().filter((b) => b instanceof NvmeBdev && b.ctrlr === c);
    const claimed = mine.find((b) => b.claimedBy !== null);
    if (claimed) throw new NvmeError('NVME_INVALID_PARAM', `bdev '${claimed.name}' of controller '${p.name}' is claimed by '${claimed.claimedBy}': remove that first`, 16);
    for (const b of mine) bdevs.unregister(b.name, NVME_MODULE);
    ctrlrs.remove(c.name);
    await c.detach();
    return true;
  });

  table.register('bdev_nvme_get_controllers', (p) => {
    const list = p.name !== undefined ? [ctrlrs.require(p.name)] : ctrlrs.list();
    return list.map((c) => ({ name: c.name, ctrlrs: [c.ctrlrInfo()] }));
  });
}

/** The save_config call that attaches the controller again as it is. */
export function nvmeAttachCall(c: NvmeController): { method: string; params: Record<string, unknown> } {
  const o = c.options;
  return {
    method: 'bdev_nvme_attach_controller',
    params: {
      name: o.name,
      trtype: 'TCP',
      adrfam: o.adrfam,
      traddr: o.traddr,
      trsvcid: o.trsvcid,
      subnqn: o.subnqn,
      hostnqn: o.hostnqn,
      hdgst: o.headerDigest,
      ddgst: o.dataDigest,
      ctrlr_loss_timeout_sec: o.ctrlrLossTimeoutSec,
      reconnect_delay_sec: o.reconnectDelaySec,
      fast_io_fail_timeout_sec: o.fastIoFailTimeoutSec,
      num_io_queues: o.numIoQueues,
      io_queue_size: o.ioQueueSize,
      keep_alive_timeout_ms: o.keepAliveTimeoutMs,
      fabrics_connect_timeout_us: o.connectTimeoutMs * 1000,
    },
  };
}
