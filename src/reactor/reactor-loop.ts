// The reactor's loop: mailbox, queue polling, backend completions, and sleeping in epoll when idle.
import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { Epoll, EPOLLIN } from '../sys/epoll.ts';
import { eventfdDrain } from '../sys/eventfd.ts';
import { MonotonicClock, MonotonicDeadline } from '../sys/monotonic-clock.ts';
import { VirtioDevice, DeviceError, type DeviceHost } from '../devices/virtio-device.ts';
import { createDeviceModel } from '../devices/device-models.ts';
import { VirtioScsiModel } from '../devices/virtio-scsi/virtio-scsi-model.ts';
import type { ScsiTmfRelay } from '../devices/virtio-scsi/tmf-dispatch.ts';
import type { ScsiTmfWaiter } from '../scsi/task-management.ts';
import type { ReactorCommand, ReactorRequest, ReactorReply, ReactorEvent, ScsiTmfCommand } from './mailbox-messages.ts';
import { GcWindow } from './gc-window.ts';
import type { MailDoorbell } from './mail-doorbell.ts';
import { ADAPTIVE_IDLE_US, MAX_SLEEP_MS, type PollMode } from './poll-mode.ts';
import { inflightAnnouncedByFds, setWakeFdWatcher } from '../bdev/channel-wait.ts';

const EPOLLET = 1 << 31;
const WAKE_TOKEN = -1;
/** Adaptive mode reads the clock once per this many idle loop turns (a power of two). */
const IDLE_CHECK_TURNS = 16;
/** Idle turns after which a reactor waiting only on fd-announced I/O sleeps. */
const FD_WAIT_TURNS = 2;
const IDLE_BUDGET = MonotonicDeadline.split(ADAPTIVE_IDLE_US * 1000);

interface PendingStop {
  seq: number;
  device: VirtioDevice;
  index: number;
}

export class ReactorLoop implements DeviceHost {
  private readonly port: MessagePort;
  private readonly doorbell: MailDoorbell;
  private readonly wakeFd: number;
  private readonly pollMode: PollMode;
  private readonly epoll = new Epoll(64);
  private readonly devices = new Map<number, VirtioDevice>();
  private deviceList: VirtioDevice[] = [];
  private pendingStops: PendingStop[] = [];
  /** scsi.tmf requests waiting for their tasks: seq -> device id (failed if the device goes). */
  private readonly pendingTmfs = new Map<number, number>();
  /**
   * Finished scsi.tmf requests (seq, response pairs), answered after the next used-ring flush: the
   * control plane relays the answer to the reactor with the control queue, whose TMF response
   * must not reach the driver before the responses of the commands the TMF waited for.
   */
  private readonly tmfAnswers: number[] = [];
  private stopping = false;
  private shutdownSeq = -1;
  /** Guest notifications are enabled (set before sleeping, cleared by the next turn). */
  private armed = false;
  /** The last sleep waited on a remote backend's completion fds (see run()). */
  private sleptOnFds = false;
  private readonly gcWindow = new GcWindow();
  /** Counters for `stats`. */
  loops = 0;
  sleeps = 0;

  constructor(port: MessagePort, doorbell: MailDoorbell, wakeFd: number, pollMode: PollMode) {
    this.port = port;
    this.doorbell = doorbell;
    this.wakeFd = wakeFd;
    this.pollMode = pollMode;
    this.epoll.add(wakeFd, WAKE_TOKEN, EPOLLIN | EPOLLET);
    // Completion fds of this thread's bdev channels (RBD): sleeping with their I/O in flight.
    setWakeFdWatcher({ add: (fd) => this.epoll.add(fd, fd, EPOLLIN | EPOLLET), remove: (fd) => this.epoll.remove(fd) });
  }

  watchKick(fd: number): void {
    this.epoll.add(fd, fd, EPOLLIN | EPOLLET);
  }

  unwatchKick(fd: number): void {
    this.epoll.remove(fd);
  }

  reportQueueError(deviceId: number, queue: number, code: string, message: string): void {
    const ev: ReactorEvent = { event: 'queue-error', deviceId, queue, code, message };
    this.port.postMessage(ev);
  }

  private reply(seq: number, value: number): void {
    const r: ReactorReply = { seq, ok: true, value };
    this.port.postMessage(r);
  }

  private fail(seq: number, e: unknown): void {
    const err = e as { code?: string; message?: string };
    const r: ReactorReply = { seq, ok: false, code: err.code ?? 'INTERNAL', message: err.message ?? String(e) };
    this.port.postMessage(r);
  }

  private device(id: number): VirtioDevice {
    const d = this.devices.get(id);
    if (!d) throw new DeviceError('NO_DEVICE', `reactor has no device ${id}`);
    return d;
  }

  private handle(req: ReactorRequest): void {
    const { seq, cmd } = req;
    try {
      const v = this.execute(seq, cmd);
      if (v !== null) this.reply(seq, v);
    } catch (e) {
      this.fail(seq, e);
    }
  }

  /** Returns the reply value, or null when the reply is deferred. */
  private execute(seq: number, cmd: ReactorCommand): number | null {
    switch (cmd.op) {
      case 'device.create': {
        if (this.devices.has(cmd.deviceId)) throw new DeviceError('DEVICE_EXISTS', `device ${cmd.deviceId} exists`);
        const p = cmd.placement as Partial<typeof cmd.placement> | undefined;
        if (typeof p?.home !== 'boolean' || typeof p.shared !== 'boolean') throw new DeviceError('BAD_PLACEMENT', `device ${cmd.deviceId}: placement needs boolean home and shared`);
        const relay = cmd.kind === 'scsi' && p.home && p.shared ? this.tmfRelay(cmd.deviceId) : null;
        const dev = new VirtioDevice(cmd.deviceId, cmd.name, createDeviceModel(cmd.kind, cmd.deviceId, (q) => dev.markDirty(q), p.home, relay), this);
        this.devices.set(cmd.deviceId, dev);
        this.deviceList = [...this.devices.values()];
        return 0;
      }
      case 'device.destroy': {
        const dev = this.device(cmd.deviceId);
        dev.close();
        this.devices.delete(cmd.deviceId);
        this.deviceList = [...this.devices.values()];
        this.failPendingTmfs(cmd.deviceId);
        return 0;
      }
      case 'device.features':
        this.device(cmd.deviceId).setFeatures(cmd.features);
        return 0;
      case 'device.memory':
        this.device(cmd.deviceId).setMemory(cmd.regions);
        return 0;
      case 'device.inflight':
        this.device(cmd.deviceId).setInflight(cmd.region);
        return 0;
      case 'device.reset':
        this.device(cmd.deviceId).reset();
        return 0;
      case 'device.disconnect':
        this.device(cmd.deviceId).disconnect();
        return 0;
      case 'ring.start':
        this.device(cmd.deviceId).startRing(cmd.setup);
        return 0;
      case 'ring.stop': {
        const dev = this.device(cmd.deviceId);
        const last = dev.stopRing(cmd.index);
        if (last >= 0) return last;
        this.pendingStops.push({ seq, device: dev, index: cmd.index });
        return null;
      }
      case 'device.coalescing':
        this.device(cmd.deviceId).setCoalescing(cmd.delayBaseUs, cmd.iopsThreshold);
        return 0;
      case 'ring.call':
        this.device(cmd.deviceId).setCallFd(cmd.index, cmd.fd);
        return 0;
      case 'scsi.tmf':
        this.taskManagement(seq, cmd);
        return null;
      case 'scsi.target':
      case 'scsi.resize':
      case 'scsi.tmfDone':
      case 'blk.bdev':
      case 'blk.resize':
      case 'blk.writeback':
        this.device(cmd.deviceId).model.control(cmd);
        return 0;
      case 'stats':
        return this.loops;
      case 'gc.start':
        this.gcWindow.start();
        return 0;
      case 'gc.stop': {
        const gc = this.gcWindow.stop();
        if (!gc) {
          this.fail(seq, { code: 'NO_GC_WINDOW', message: 'no GC window was started on this reactor' });
          return null;
        }
        const r: ReactorReply = { seq, ok: true, value: 0, gc };
        this.port.postMessage(r);
        return null;
      }
      case 'shutdown':
        this.stopping = true;
        this.shutdownSeq = seq;
        return null;
    }
  }

  /** The home instance of a spread scsi device posts its TMFs to the control plane. */
  private tmfRelay(deviceId: number): ScsiTmfRelay {
    return {
      relayTmf: (token, subtype, target, lun, tagLo, tagHi) => {
        const ev: ReactorEvent = { event: 'scsi-tmf', deviceId, token, subtype, target, lun, tagLo, tagHi };
        this.port.postMessage(ev);
      },
    };
  }

  /** scsi.tmf: replies with the SCSI TMF response once this reactor's affected tasks finished. */
  private taskManagement(seq: number, cmd: ScsiTmfCommand): void {
    const model = this.device(cmd.deviceId).model;
    if (!(model instanceof VirtioScsiModel)) throw new DeviceError('WRONG_DEVICE_KIND', `device ${cmd.deviceId} is not a virtio-scsi device`);
    const waiter: ScsiTmfWaiter = {
      scsiTmfDone: (response) => {
        if (this.pendingTmfs.delete(seq)) this.tmfAnswers.push(seq, response);
      },
    };
    // Registered first: the waiter may answer inside the call.
    this.pendingTmfs.set(seq, cmd.deviceId);
    try {
      model.taskManagement(cmd, waiter);
    } catch (e) {
      this.pendingTmfs.delete(seq);
      throw e;
    }
  }

  private sendTmfAnswers(): void {
    const a = this.tmfAnswers;
    for (let i = 0; i < a.length; i += 2) this.reply(a[i], a[i + 1]);
    a.length = 0;
  }

  private failPendingTmfs(deviceId: number): void {
    for (const [seq, id] of this.pendingTmfs) {
      if (id !== deviceId) continue;
      this.pendingTmfs.delete(seq);
      this.fail(seq, new DeviceError('NO_DEVICE', `device ${deviceId} was destroyed before its TMF finished`));
    }
  }

  private drainMailbox(): void {
    if (!this.doorbell.rung()) return;
    for (;;) {
      const m = receiveMessageOnPort(this.port);
      if (!m) return;
      this.handle(m.message as ReactorRequest);
    }
  }

  private finishPendingStops(): void {
    if (this.pendingStops.length === 0) return;
    const still: PendingStop[] = [];
    for (const p of this.pendingStops) {
      try {
        const last = p.device.finishStop(p.index);
        if (last >= 0) this.reply(p.seq, last);
        else still.push(p);
      } catch (e) {
        this.fail(p.seq, e);
      }
    }
    this.pendingStops = still;
  }

  /**
   * Re-enables guest notifications and sleeps in epoll until a kick, the mailbox or a timeout.
   * Notifications stay enabled when it returns: the next turn serves the kicked queues first and
   * disarms after (see run), which keeps the first I/O after a sleep short.
   */
  private sleep(): void {
    const devices = this.deviceList;
    // Requests waiting for bdev completions are reaped by polling (io_uring): no sleeping then,
    // unless every channel with I/O in flight announces completions on an fd (RBD).
    if (this.tmfAnswers.length > 0) return;
    let inflight = 0;
    for (let i = 0; i < devices.length; i++) {
      if (devices[i].hasPendingSignals()) return;
      inflight += devices[i].inflightTotal();
    }
    if (inflight > 0 && !inflightAnnouncedByFds()) return;
    let arrived = false;
    for (let i = 0; i < devices.length; i++) if (devices[i].armNotifications()) arrived = true;
    this.armed = true;
    if (arrived) return;
    this.sleeps++;
    // Pending stops or retired memory need the loop to come back soon even without kicks.
    const timeout = this.pendingStops.length > 0 ? 1 : MAX_SLEEP_MS;
    // Nothing is in flight: other reactors need not wait for this one while it sleeps (SCSI range
    // locks), and it says so before it can start anything again.
    // With I/O in flight it stays awake for them: its writes may overlap their locks.
    const idle = inflight === 0;
    if (idle) for (let i = 0; i < devices.length; i++) devices[i].setAsleep(true);
    const n = this.epoll.wait(timeout);
    if (idle) for (let i = 0; i < devices.length; i++) devices[i].setAsleep(false);
    for (let i = 0; i < n; i++) if (this.epoll.tokens[i] === WAKE_TOKEN) eventfdDrain(this.wakeFd);
  }

  /** Requests are in flight, all at channels that announce their completions on fds. */
  private waitingOnFds(): boolean {
    const devices = this.deviceList;
    let inflight = 0;
    for (let i = 0; i < devices.length; i++) inflight += devices[i].inflightTotal();
    return inflight > 0 && inflightAnnouncedByFds();
  }

  /** After the first turn following a sleep: back to polling without guest kicks. */
  private disarm(): void {
    this.armed = false;
    const devices = this.deviceList;
    for (let i = 0; i < devices.length; i++) devices[i].disarmNotifications();
  }

  run(): void {
    // Busy turns never read the clock. Idle turns are counted, and the clock is read every
    // IDLE_CHECK_TURNS of them: as integers (MonotonicClock), since a performance.now() double
    // here became a heap number for some idle stretches (one per I/O at QD1, measured).
    const clock = new MonotonicClock();
    const idleEnd = new MonotonicDeadline();
    let idleTurns = 0;
    while (!this.stopping) {
      this.loops++;
      // Queues first, then the mailbox and, after a sleep, disarming: right after a wake-up every
      // step runs cold (measured: 5 us for an empty mailbox, 10-18 us to disarm, vs 0.1 us warm),
      // and the kicked request should not wait behind them.
      let work = 0;
      const devices = this.deviceList;
      for (let i = 0; i < devices.length; i++) work += devices[i].poll();
      if (this.tmfAnswers.length > 0) this.sendTmfAnswers();
      if (this.armed) this.disarm();
      this.drainMailbox();
      this.finishPendingStops();
      if (work > 0) {
        idleTurns = 0;
        continue;
      }
      if (this.pollMode === 'poll') continue;
      if (this.pollMode === 'adaptive') {
        ++idleTurns;
        // Waiting on a remote backend whose completions wake it (RBD): sleep at once, not after
        // the budget. Its completions take hundreds of microseconds, and a spinning reactor takes
        // the CPU from the client library's threads that bring them (librados).
        if (idleTurns === FD_WAIT_TURNS && this.waitingOnFds()) {
          this.sleep();
          this.sleptOnFds = true;
          idleTurns = 0;
          continue;
        }
        // The I/O just completed came from such a backend: the guest's next request follows a
        // round trip of hundreds of microseconds, so spinning the idle budget for it costs CPU
        // (librados' threads' too) for little latency. Sleep as soon, and wake on its kick.
        if (idleTurns === FD_WAIT_TURNS && this.sleptOnFds) {
          this.sleptOnFds = false;
          this.sleep();
          idleTurns = 0;
          continue;
        }
        if ((idleTurns & (IDLE_CHECK_TURNS - 1)) !== 0) continue;
        clock.read();
        if (idleTurns === IDLE_CHECK_TURNS) {
          idleEnd.set(clock, IDLE_BUDGET.sec, IDLE_BUDGET.nsec);
          continue;
        }
        if (!idleEnd.passed(clock)) continue;
      }
      this.sleep();
      idleTurns = 0;
    }
    for (const d of this.devices.values()) d.close();
    this.devices.clear();
    this.epoll.close();
    if (this.shutdownSeq >= 0) this.reply(this.shutdownSeq, 0);
  }
}
