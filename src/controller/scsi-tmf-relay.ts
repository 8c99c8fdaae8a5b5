// Task management for a SCSI controller whose request queues run on several reactors. Each
// reactor knows only the tasks of its own queues, so the home reactor's control queue relays a
// TMF here; it runs on every reactor of the controller (each answers once its affected tasks
// finished) and the combined answer goes back to the home reactor, which completes the guest's
// request. Control path: one TMF at a time per guest request, allocation is fine.
import type { ReactorHandle } from '../reactor/reactor-handle.ts';
import type { ScsiTmfEvent } from '../reactor/mailbox-messages.ts';
import type { Logger } from '../log/logger.ts';
import { checkTmfFields } from '../devices/virtio-scsi/tmf-dispatch.ts';
import { VIRTIO_SCSI_T_TMF_QUERY_TASK, VIRTIO_SCSI_T_TMF_QUERY_TASK_SET } from '../devices/virtio-scsi/virtio-scsi-constants.ts';
import {
  SCSI_TMF_FUNCTION_COMPLETE,
  SCSI_TMF_FUNCTION_REJECTED,
  SCSI_TMF_FUNCTION_SUCCEEDED,
  SCSI_TMF_INCORRECT_LUN,
} from '../scsi/scsi-constants.ts';

/**
 * One SCSI TMF response from each reactor's answer: INCORRECT LUN if any says so (the LUN is the
 * same everywhere), REJECTED if any rejected, for the queries SUCCEEDED if any reactor holds a
 * matching task, else FUNCTION COMPLETE.
 */
export function combineTmfResponses(subtype: number, responses: readonly number[]): number {
  if (responses.includes(SCSI_TMF_INCORRECT_LUN)) return SCSI_TMF_INCORRECT_LUN;
  if (responses.includes(SCSI_TMF_FUNCTION_REJECTED)) return SCSI_TMF_FUNCTION_REJECTED;
  const query = subtype === VIRTIO_SCSI_T_TMF_QUERY_TASK || subtype === VIRTIO_SCSI_T_TMF_QUERY_TASK_SET;
  if (query && responses.includes(SCSI_TMF_FUNCTION_SUCCEEDED)) return SCSI_TMF_FUNCTION_SUCCEEDED;
  return SCSI_TMF_FUNCTION_COMPLETE;
}

export class ScsiTmfRelay {
  private readonly deviceId: number;
  /** Home first: it relays the TMFs and completes them. */
  private readonly reactors: readonly ReactorHandle[];
  private readonly logger: Logger;

  constructor(deviceId: number, reactors: readonly ReactorHandle[], logger: Logger) {
    this.deviceId = deviceId;
    this.reactors = reactors;
    this.logger = logger;
  }

  listen(): void {
    this.reactors[0].onScsiTmf(this.deviceId, (ev) => void this.run(ev));
  }

  close(): void {
    this.reactors[0].onScsiTmf(this.deviceId, null);
  }

  /** Never throws: every relayed TMF gets an answer, or the home device is gone. */
  private async run(ev: ScsiTmfEvent): Promise<void> {
    if (!Number.isSafeInteger(ev.token) || ev.token < 1) {
      this.logger.error({ token: ev.token }, 'relayed TMF without a valid token: cannot be answered');
      return;
    }
    let response = SCSI_TMF_FUNCTION_COMPLETE;
    let failed = false;
    try {
      checkTmfFields('relayed TMF', ev);
      const cmd = { op: 'scsi.tmf', deviceId: this.deviceId, subtype: ev.subtype, target: ev.target, lun: ev.lun, tagLo: ev.tagLo, tagHi: ev.tagHi } as const;
      const results = await Promise.allSettled(this.reactors.map((r) => r.request(cmd)));
      const answers: number[] = [];
      results.forEach((r, i) => {
        if (r.status === 'fulfilled') answers.push(r.value);
        else {
          failed = true;
          this.logger.warn({ err: r.reason, reactor: this.reactors[i].index, subtype: ev.subtype, target: ev.target, lun: ev.lun }, 'TMF failed on a reactor: answering FAILURE');
        }
      });
      response = combineTmfResponses(ev.subtype, answers);
    } catch (e) {
      failed = true;
      this.logger.warn({ err: e }, 'relayed TMF refused: answering FAILURE');
    }
    try {
      await this.reactors[0].request({ op: 'scsi.tmfDone', deviceId: this.deviceId, token: ev.token, response, failed });
    } catch (e) {
      // The device left its home reactor meanwhile (destroy): its control queue went with it.
      this.logger.info({ err: e, token: ev.token }, 'TMF answer not delivered: device gone');
    }
  }
}
