/**
 * VM Import of a disk already in S3: ImportImage (AWS makes the AMI), or
 * ImportSnapshot and then RegisterImage of its snapshot (mode 'snapshot':
 * no OS check by AWS, ferry's own registration). The task id is
 * checkpointed as soon as EC2 gives it; a later call with that checkpoint
 * follows the same task instead of starting another (and the ClientToken
 * makes a lost ImportImage answer harmless too).
 *
 * A task AWS fails ends FERRY_IMPORT_FAILED with AWS's StatusMessage and,
 * in the hint, what ferry inspect finds in the local image. A task that
 * stops moving or takes too long is cancelled (see import-watch.ts). On
 * every failure except an abort, what the import made is removed: the task
 * is cancelled if it is still active and the S3 object is deleted; after
 * success the object is deleted too (keepObject keeps it). An abort leaves
 * everything for a resume.
 */
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { S3Client } from '@aws-sdk/client-s3';
import { FerryError } from '../../errors/index.js';
import type { Checkpoint, PublishEvent } from '../types.js';
import { isAbort, throwIfAborted } from './aws-failure.js';
import { type CleanupReport, cleanUpImport } from './import-cleanup.js';
import { explainImportFailure } from './import-explain.js';
import { describeTask, type StartTaskInput, startTask, type TaskView } from './import-task.js';
import { type TimelineEntry, watchTask } from './import-watch.js';
import { registerSnapshotImage } from './register-snapshot-image.js';

export type { TimelineEntry } from './import-watch.js';

/** What the task is asked (StartTaskInput: mode, disk, description, boot mode, keys, token, tags), and how it is watched. */
export interface ImportImageOptions extends StartTaskInput {
  readonly clients: { readonly ec2: EC2Client; readonly s3: S3Client };
  readonly checkpoint: Checkpoint<{ taskId: string }>;
  readonly pollMs: number;
  /** No change of status, message or progress for this long: cancel, FERRY_IMPORT_STALLED. */
  readonly stallMs: number;
  /** Not finished this long after this call began: cancel, FERRY_IMPORT_TIMEOUT. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  readonly onEvent?: (event: PublishEvent) => void;
  /** The placement key events carry (default `s3://bucket/key`). */
  readonly placement?: string;
  /**
   * The local image (what was uploaded, or the render it came from): ferry
   * inspect reads it to explain a failed task. Without it the hint only
   * says how to run inspect.
   */
  readonly localImage?: string;
  /** mode 'snapshot': the AMI's name (required there; unique per account and region). */
  readonly imageName?: string;
  /** mode 'snapshot': the root device (default /dev/xvda). */
  readonly rootDeviceName?: '/dev/xvda' | '/dev/sda1';
  /** Keep the S3 object afterwards (default: delete it, success or failure). */
  readonly keepObject?: boolean;
}

export interface ImportImageResult {
  readonly imageId: string;
  readonly snapshotIds: readonly string[];
  readonly taskId: string;
  /** Every distinct state seen, in order, with when it was first seen. */
  readonly timeline: readonly TimelineEntry[];
  /** Wall time of this call. */
  readonly seconds: number;
  /** The S3 object was deleted afterwards (false with keepObject or when the delete failed). */
  readonly objectDeleted: boolean;
}

function check(options: ImportImageOptions): void {
  const bad = (what: string, value: string | number): never => {
    throw new FerryError(
      'FERRY_USAGE',
      `Cannot import s3://${options.bucket}/${options.key}: ${what}`,
      { details: { value } },
    );
  };
  for (const [name, v] of [
    ['pollMs', options.pollMs],
    ['stallMs', options.stallMs],
    ['timeoutMs', options.timeoutMs],
  ] as const)
    if (!Number.isFinite(v) || v <= 0) bad(`${name} must be a positive number of milliseconds`, v);
  if (options.clientToken.length === 0 || options.clientToken.length > 64)
    bad('the client token must be 1 to 64 characters', options.clientToken);
  if (options.mode === 'snapshot' && (options.imageName ?? '') === '')
    bad("mode 'snapshot' needs imageName for RegisterImage", options.mode);
  if (options.kmsKeyId !== undefined && !options.encrypted)
    bad('a KMS key is given but encrypted is false', options.kmsKeyId);
}

/**
 * Imports s3://bucket/key into an AMI and returns it with the task's
 * timeline (see the module comment).
 */
export async function importImage(options: ImportImageOptions): Promise<ImportImageResult> {
  check(options);
  const started = performance.now();
  const { clients, bucket, key, mode, signal } = options;
  const where = `s3://${bucket}/${key}`;
  const placement = options.placement ?? where;
  throwIfAborted(signal, `import ${where}`);
  const timeline: TimelineEntry[] = [];
  const onEntry = (e: TimelineEntry): void =>
    options.onEvent?.({
      type: 'import',
      placement,
      status: e.status,
      progress: e.progress,
      message: e.statusMessage,
    });

  let taskId: string | undefined;
  const cleanUp = (reason: string): Promise<CleanupReport> =>
    cleanUpImport({
      clients,
      bucket,
      key,
      ...(taskId === undefined ? {} : { taskId }),
      reason,
      ...(options.keepObject === true ? { keepObject: true } : {}),
    });

  try {
    // A checkpointed task EC2 still knows is followed; otherwise one is started.
    taskId = (await options.checkpoint.load())?.taskId;
    let known: TaskView | undefined;
    if (taskId !== undefined) known = await describeTask(clients.ec2, mode, taskId, signal);
    let id: string;
    if (known !== undefined) id = known.id;
    else {
      id = await startTask(
        clients.ec2,
        {
          mode,
          bucket,
          key,
          format: options.format,
          description: options.description,
          ...(options.bootMode === undefined ? {} : { bootMode: options.bootMode }),
          architecture: options.architecture,
          encrypted: options.encrypted,
          ...(options.kmsKeyId === undefined ? {} : { kmsKeyId: options.kmsKeyId }),
          clientToken: options.clientToken,
          tags: options.tags,
        },
        signal,
      );
      taskId = id;
      await options.checkpoint.save({ taskId: id });
    }
    const { task } = await watchTask({
      ec2: clients.ec2,
      mode,
      taskId: id,
      pollMs: options.pollMs,
      stallMs: options.stallMs,
      timeoutMs: options.timeoutMs,
      timeline,
      onEntry,
      ...(signal === undefined ? {} : { signal }),
    });
    if (task.status !== 'completed') throw await failed(options, task);

    let imageId: string;
    if (mode === 'image') {
      if (task.imageId === null)
        throw new FerryError(
          'FERRY_IMPORT_REFUSED',
          `Cannot import ${where}: the task ${id} completed without an ImageId`,
          { details: { taskId: id } },
        );
      imageId = task.imageId;
    } else {
      const snapshotId = task.snapshotIds[0];
      if (snapshotId === undefined)
        throw new FerryError(
          'FERRY_IMPORT_REFUSED',
          `Cannot import ${where}: the task ${id} completed without a SnapshotId`,
          { details: { taskId: id } },
        );
      imageId = await registerSnapshotImage(
        clients.ec2,
        {
          name: options.imageName!,
          description: options.description,
          snapshotId,
          architecture: options.architecture,
          ...(options.bootMode === undefined ? {} : { bootMode: options.bootMode }),
          ...(options.rootDeviceName === undefined
            ? {}
            : { rootDeviceName: options.rootDeviceName }),
        },
        signal,
      );
    }
    let objectDeleted = false;
    if (options.keepObject !== true) {
      const report = await cleanUpImport({ clients, bucket, key });
      objectDeleted = report.objectDeleted;
    }
    return {
      imageId,
      snapshotIds: task.snapshotIds,
      taskId: id,
      timeline,
      seconds: (performance.now() - started) / 1000,
      objectDeleted,
    };
  } catch (error) {
    // An abort leaves the task and the object for a resume.
    if (isAbort(error, signal)) throw error;
    await cleanUp(
      `Cancelled by ferry: ${error instanceof Error ? error.message : String(error)}`.slice(0, 255),
    );
    throw error;
  }
}

/** FERRY_IMPORT_FAILED for a task AWS ended: its words, and inspect's explanation in the hint. */
async function failed(options: ImportImageOptions, task: TaskView): Promise<FerryError> {
  const message = task.statusMessage ?? '(no StatusMessage)';
  let hint = `Run ferry inspect IMAGE --target aws-import on the uploaded image to see what VM Import objects to.`;
  let verdict: string | null = null;
  let findings = '';
  if (options.localImage !== undefined) {
    const e = await explainImportFailure(options.localImage, message, options.signal);
    hint = e.hint;
    verdict = e.verdict;
    findings = e.findings.map((f) => f.code).join(',');
  }
  return new FerryError(
    'FERRY_IMPORT_FAILED',
    `Cannot import s3://${options.bucket}/${options.key}: AWS ended the task ${task.id} ${task.status}: ${message}`,
    {
      details: {
        taskId: task.id,
        status: task.status,
        statusMessage: task.statusMessage,
        inspectVerdict: verdict,
        findings,
      },
      hint,
    },
  );
}
