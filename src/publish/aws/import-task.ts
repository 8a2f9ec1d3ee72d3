/**
 * One VM Import task, ImportImage's or ImportSnapshot's, seen the same way:
 * start it (idempotent by ClientToken), and describe it as status, status
 * message, progress and what it made. AWS documents Status (active,
 * deleting, deleted, completed); the sub-state is in StatusMessage, and a
 * failed task's reason too.
 */
import {
  DescribeImportImageTasksCommand,
  DescribeImportSnapshotTasksCommand,
  type EC2Client,
  ImportImageCommand,
  ImportSnapshotCommand,
  type TagSpecification,
} from '@aws-sdk/client-ec2';
import { FerryError } from '../../errors/index.js';
import { awsCode, awsFailure } from './aws-failure.js';

export type ImportMode = 'image' | 'snapshot';
export type ImportDiskFormat = 'vmdk' | 'raw' | 'vhd';

export interface TaskView {
  readonly id: string;
  readonly status: string;
  readonly statusMessage: string | null;
  /** AWS's Progress (a percentage estimate), null when it shows none. */
  readonly progress: number | null;
  /** ImportImage: the AMI, once completed. */
  readonly imageId: string | null;
  /** The snapshot(s) made, once completed. */
  readonly snapshotIds: readonly string[];
}

export interface StartTaskInput {
  readonly mode: ImportMode;
  readonly bucket: string;
  readonly key: string;
  readonly format: ImportDiskFormat;
  readonly description: string;
  readonly bootMode?: 'legacy-bios' | 'uefi';
  readonly architecture: 'x86_64' | 'arm64' | 'i386';
  readonly encrypted: boolean;
  readonly kmsKeyId?: string;
  readonly clientToken: string;
  readonly tags: Readonly<Record<string, string>>;
}

function tagSpecs(resourceType: string, tags: Readonly<Record<string, string>>) {
  const list = Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
  return list.length === 0
    ? {}
    : {
        TagSpecifications: [
          { ResourceType: resourceType, Tags: list } as TagSpecification,
        ] as TagSpecification[],
      };
}

function progressOf(p: string | undefined): number | null {
  if (p === undefined || p === '') return null;
  const n = Number(p);
  return Number.isFinite(n) ? n : null;
}

/** ImportImage or ImportSnapshot; the same ClientToken gives the same task back. */
export async function startTask(
  ec2: EC2Client,
  input: StartTaskInput,
  signal?: AbortSignal,
): Promise<string> {
  const opts = signal === undefined ? {} : { abortSignal: signal };
  const encryption = {
    Encrypted: input.encrypted,
    ...(input.kmsKeyId === undefined ? {} : { KmsKeyId: input.kmsKeyId }),
  };
  const disk = {
    Format: input.format.toUpperCase(),
    UserBucket: { S3Bucket: input.bucket, S3Key: input.key },
  };
  let id: string | undefined;
  try {
    if (input.mode === 'image') {
      const r = await ec2.send(
        new ImportImageCommand({
          Description: input.description,
          DiskContainers: [disk],
          Architecture: input.architecture,
          ...(input.bootMode === undefined ? {} : { BootMode: input.bootMode }),
          ...encryption,
          ClientToken: input.clientToken,
          ...tagSpecs('import-image-task', input.tags),
        }),
        opts,
      );
      id = r.ImportTaskId;
    } else {
      const r = await ec2.send(
        new ImportSnapshotCommand({
          Description: input.description,
          DiskContainer: disk,
          ...encryption,
          ClientToken: input.clientToken,
          ...tagSpecs('import-snapshot-task', input.tags),
        }),
        opts,
      );
      id = r.ImportTaskId;
    }
  } catch (error) {
    throw awsFailure(
      'FERRY_IMPORT_REFUSED',
      `start an import of s3://${input.bucket}/${input.key}`,
      error,
      signal,
    );
  }
  if (id === undefined)
    throw new FerryError(
      'FERRY_IMPORT_REFUSED',
      `Cannot start an import of s3://${input.bucket}/${input.key}: the answer has no ImportTaskId`,
    );
  return id;
}

/** The task as EC2 describes it now; undefined when EC2 does not know it (any more). */
export async function describeTask(
  ec2: EC2Client,
  mode: ImportMode,
  id: string,
  signal?: AbortSignal,
): Promise<TaskView | undefined> {
  const opts = signal === undefined ? {} : { abortSignal: signal };
  try {
    if (mode === 'image') {
      const r = await ec2.send(new DescribeImportImageTasksCommand({ ImportTaskIds: [id] }), opts);
      const t = r.ImportImageTasks?.find((x) => x.ImportTaskId === id);
      if (t === undefined) return undefined;
      return {
        id,
        status: t.Status ?? 'unknown',
        statusMessage: t.StatusMessage ?? null,
        progress: progressOf(t.Progress),
        imageId: t.ImageId ?? null,
        snapshotIds: (t.SnapshotDetails ?? []).flatMap((d) =>
          d.SnapshotId === undefined ? [] : [d.SnapshotId],
        ),
      };
    }
    const r = await ec2.send(new DescribeImportSnapshotTasksCommand({ ImportTaskIds: [id] }), opts);
    const t = r.ImportSnapshotTasks?.find((x) => x.ImportTaskId === id)?.SnapshotTaskDetail;
    if (t === undefined) return undefined;
    return {
      id,
      status: t.Status ?? 'unknown',
      statusMessage: t.StatusMessage ?? null,
      progress: progressOf(t.Progress),
      imageId: null,
      snapshotIds: t.SnapshotId === undefined ? [] : [t.SnapshotId],
    };
  } catch (error) {
    if (awsCode(error) === 'InvalidConversionTaskId') return undefined;
    throw awsFailure('FERRY_IMPORT_REFUSED', `describe the import task ${id}`, error, signal);
  }
}

export function isFinished(t: TaskView): boolean {
  return t.status === 'completed' || t.status === 'deleted' || t.status === 'deleting';
}
