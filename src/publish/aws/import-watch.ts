/**
 * Follows an import task until it finishes, recording every distinct
 * (status, message, progress) it shows with the time it was first seen.
 * Two limits guard the wait. Stall: nothing of the three changed for
 * stallMs (VM Import tasks are known to sit in one state for hours when
 * something went wrong on AWS's side). Timeout: the task is not finished
 * timeoutMs after the watch began. Either way the task is cancelled
 * (CancelImportTask), followed until it leaves `active` (briefly), and the
 * watch fails with FERRY_IMPORT_STALLED or FERRY_IMPORT_TIMEOUT.
 */
import type { EC2Client } from '@aws-sdk/client-ec2';
import { FerryError } from '../../errors/index.js';
import { sleep } from './aws-failure.js';
import { cancelImportTask } from './import-cleanup.js';
import { describeTask, type ImportMode, isFinished, type TaskView } from './import-task.js';

export interface TimelineEntry {
  readonly status: string;
  readonly statusMessage: string | null;
  readonly progress: number | null;
  /** ISO 8601, when ferry first saw this state. */
  readonly at: string;
}

export interface WatchOptions {
  readonly ec2: EC2Client;
  readonly mode: ImportMode;
  readonly taskId: string;
  /** Between two DescribeImport*Tasks calls. */
  readonly pollMs: number;
  /** No change of status, message or progress for this long: cancel and fail. */
  readonly stallMs: number;
  /** Not finished this long after the watch began: cancel and fail. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /** Each new timeline entry as it is seen. */
  readonly onEntry?: (entry: TimelineEntry) => void;
  /** The timeline so far (a resumed watch goes on from it). */
  readonly timeline?: TimelineEntry[];
  readonly now?: () => number;
}

export interface WatchResult {
  /** completed, deleted or deleting. */
  readonly task: TaskView;
  readonly timeline: TimelineEntry[];
}

/** How long a cancelled task is followed until it is no longer active. */
const SETTLE_MS = 30_000;

function same(a: TimelineEntry | undefined, t: TaskView): boolean {
  return (
    a !== undefined &&
    a.status === t.status &&
    a.statusMessage === t.statusMessage &&
    a.progress === t.progress
  );
}

function describeState(t: TaskView): string {
  const message = t.statusMessage === null ? '' : `/${t.statusMessage}`;
  const progress = t.progress === null ? '' : `, progress ${t.progress}`;
  return `${t.status}${message}${progress}`;
}

/** Follows the task to its end (see the module comment). */
export async function watchTask(options: WatchOptions): Promise<WatchResult> {
  const { ec2, mode, taskId, signal } = options;
  const now = options.now ?? Date.now;
  const timeline = options.timeline ?? [];
  const action = `follow the import task ${taskId}`;
  const began = now();
  let changed = began;
  const look = async (): Promise<TaskView> => {
    const t = await describeTask(ec2, mode, taskId, signal);
    if (t === undefined)
      throw new FerryError(
        'FERRY_IMPORT_REFUSED',
        `Cannot ${action}: EC2 does not know the task (any more)`,
        { details: { taskId } },
      );
    if (!same(timeline[timeline.length - 1], t)) {
      const entry: TimelineEntry = {
        status: t.status,
        statusMessage: t.statusMessage,
        progress: t.progress,
        at: new Date(now()).toISOString(),
      };
      timeline.push(entry);
      changed = now();
      options.onEntry?.(entry);
    }
    return t;
  };

  for (;;) {
    const t = await look();
    if (isFinished(t)) return { task: t, timeline };
    const at = now();
    const stalled = at - changed >= options.stallMs;
    const late = at - began >= options.timeoutMs;
    if (stalled || late) {
      const seconds = ((stalled ? at - changed : at - began) / 1000).toFixed(1);
      const why = stalled
        ? `no progress for ${seconds} s in ${describeState(t)}`
        : `not finished after ${seconds} s (${describeState(t)})`;
      await cancelImportTask(ec2, taskId, `Cancelled by ferry: ${why}.`, signal);
      // Follow the cancel until the task is no longer active (deleting, then deleted).
      let last = t;
      const settleEnd = now() + SETTLE_MS;
      while (last.status === 'active' && now() < settleEnd) {
        await sleep(Math.min(options.pollMs, 1000), signal, action);
        last = await look();
      }
      if (last.status === 'deleting') {
        for (let i = 0; i < 20 && last.status === 'deleting' && now() < settleEnd; i++) {
          await sleep(Math.min(options.pollMs, 500), signal, action);
          last = await look();
        }
      }
      throw new FerryError(
        stalled ? 'FERRY_IMPORT_STALLED' : 'FERRY_IMPORT_TIMEOUT',
        `Cannot import with task ${taskId}: ${why}; ferry cancelled it`,
        {
          details: {
            taskId,
            status: t.status,
            statusMessage: t.statusMessage,
            progress: t.progress,
            seconds: Number(seconds),
            finalStatus: last.status,
          },
          hint: stalled
            ? 'VM Import sometimes stops moving; a new attempt (a new ClientToken) usually goes through. Raise stallMs if the disk is large.'
            : 'Raise timeoutMs for large disks; VM Import takes 20 to 60 minutes for a few GiB.',
        },
      );
    }
    const wait = Math.max(
      1,
      Math.min(options.pollMs, changed + options.stallMs - at, began + options.timeoutMs - at),
    );
    await sleep(wait, signal, action);
  }
}
