// Control-plane side of one reactor: the worker thread, its mailbox and request/reply matching.
import { Worker, MessageChannel, type MessagePort } from 'node:worker_threads';
import { eventfdCreate, eventfdSignal } from '../sys/eventfd.ts';
import { closeFd } from '../sys/fd.ts';
import type { ReactorCommand, ReactorReply, ReactorEvent, ScsiTmfEvent } from './mailbox-messages.ts';
import type { GcWindowReport } from './gc-window.ts';
import type { PollMode } from './poll-mode.ts';
import { MailDoorbell } from './mail-doorbell.ts';
import { logOutput, type Logger } from '../log/logger.ts';

export class ReactorError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

type ReactorOk = Extract<ReactorReply, { ok: true }>;

export interface ReactorOptions {
  index: number;
  /** The reactor's CPU (from the daemon's cpumask). */
  cpu: number;
  /** Pin the thread to that CPU (sched_setaffinity). */
  pin: boolean;
  pollMode: PollMode;
  logger: Logger;
}

export class ReactorHandle {
  readonly index: number;
  readonly cpu: number;
  /** Queues placed on this reactor (for least-loaded placement). */
  load = 0;
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly wakeFd: number;
  private readonly doorbell = new MailDoorbell();
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (r: ReactorOk) => void; reject: (e: Error) => void }>();
  private exited = false;
  /** Per device id: who runs the TMFs the device's control queue relays (its controller). */
  private readonly tmfListeners = new Map<number, (ev: ScsiTmfEvent) => void>();
  private readonly logger: Logger;
  private readonly ready: Promise<void>;

  constructor(opts: ReactorOptions) {
    this.index = opts.index;
    this.cpu = opts.cpu;
    this.logger = opts.logger;
    this.wakeFd = eventfdCreate();
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.worker = new Worker(new URL('./reactor-worker.ts', import.meta.url), {
      workerData: { index: opts.index, cpu: opts.pin ? opts.cpu : -1, pollMode: opts.pollMode, wakeFd: this.wakeFd, doorbell: this.doorbell.buffer, port: port2, logLevel: opts.logger.level, logOutput: logOutput() },
      transferList: [port2],
      name: `reactor-${opts.index}`,
    });
    this.port.on('message', (m: ReactorReply | ReactorEvent) => this.onMessage(m));
    this.port.unref();
    this.ready = new Promise((resolve, reject) => {
      this.worker.once('online', () => resolve());
      this.worker.once('error', reject);
    });
    this.worker.on('error', (e) => {
      this.logger.error({ err: e, reactor: this.index }, 'reactor thread failed');
      this.failAll(new ReactorError('REACTOR_FAILED', `reactor ${this.index} failed: ${e.message}`));
    });
    this.worker.on('exit', (code) => {
      this.exited = true;
      this.failAll(new ReactorError('REACTOR_EXITED', `reactor ${this.index} exited with code ${code}`));
    });
  }

  private onMessage(m: ReactorReply | ReactorEvent): void {
    if ('event' in m) {
      if (m.event === 'scsi-tmf') return this.relayTmf(m);
      this.logger.warn({ reactor: this.index, ...m }, 'virtqueue stopped: guest error');
      return;
    }
    const p = this.pending.get(m.seq);
    if (!p) return;
    this.pending.delete(m.seq);
    if (this.pending.size === 0) this.port.unref();
    if (m.ok) p.resolve(m);
    else p.reject(new ReactorError(m.code, m.message));
  }

  private relayTmf(ev: ScsiTmfEvent): void {
    const listener = this.tmfListeners.get(ev.deviceId);
    if (listener) listener(ev);
    else this.logger.warn({ reactor: this.index, deviceId: ev.deviceId }, 'TMF relayed by a device no controller listens for: dropped');
  }

  /** Routes the device's relayed TMFs to `listener` (null: stop). */
  onScsiTmf(deviceId: number, listener: ((ev: ScsiTmfEvent) => void) | null): void {
    if (listener) this.tmfListeners.set(deviceId, listener);
    else this.tmfListeners.delete(deviceId);
  }

  private failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  async request(cmd: ReactorCommand): Promise<number> {
    return (await this.send(cmd)).value;
  }

  /** Starts (or restarts) a GC window in the reactor thread. */
  async startGcWindow(): Promise<void> {
    await this.send({ op: 'gc.start' });
  }

  /** Ends the reactor's GC window: collections, pauses and heap growth since startGcWindow. */
  async stopGcWindow(): Promise<GcWindowReport> {
    const r = await this.send({ op: 'gc.stop' });
    if (!r.gc) throw new ReactorError('INTERNAL', `reactor ${this.index} sent no GC report`);
    return r.gc;
  }

  private async send(cmd: ReactorCommand): Promise<ReactorOk> {
    await this.ready;
    if (this.exited) throw new ReactorError('REACTOR_EXITED', `reactor ${this.index} is not running`);
    const seq = ++this.seq;
    const p = new Promise<ReactorOk>((resolve, reject) => this.pending.set(seq, { resolve, reject }));
    this.port.ref();
    this.port.postMessage({ seq, cmd });
    this.doorbell.ring();
    eventfdSignal(this.wakeFd);
    return p;
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const exit = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    try {
      await this.request({ op: 'shutdown' });
    } catch {
      // exiting races with the reply: either way the worker ends
    }
    await exit;
    closeFd(this.wakeFd);
  }
}
