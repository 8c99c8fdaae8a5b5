// Entry point of a reactor worker thread.
import { workerData, type MessagePort } from 'node:worker_threads';
import { pinCurrentThread } from '../sys/affinity.ts';
import { ReactorLoop } from './reactor-loop.ts';
import { componentLogger, setLogFormat, setLogLevel } from '../log/logger.ts';
import type { PollMode } from './poll-mode.ts';
import { MailDoorbell } from './mail-doorbell.ts';

const data = workerData as { index: number; cpu: number; pollMode: PollMode; wakeFd: number; doorbell: SharedArrayBuffer; port: MessagePort; logLevel: string; logOutput: { format: 'pretty' | 'json'; color: boolean } };
// The daemon's --log-level and --log-format apply to its reactor threads too.
setLogLevel(data.logLevel);
setLogFormat(data.logOutput.format, data.logOutput.color);
const log = componentLogger('reactor', { reactor: data.index });
if (data.cpu >= 0) {
  try {
    pinCurrentThread(data.cpu);
  } catch (e) {
    log.warn({ err: e, cpu: data.cpu }, 'could not pin reactor thread; running unpinned');
  }
}
log.debug({ cpu: data.cpu, pollMode: data.pollMode }, 'reactor started');
new ReactorLoop(data.port, new MailDoorbell(data.doorbell), data.wakeFd, data.pollMode).run();
data.port.close();
