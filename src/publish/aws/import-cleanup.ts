/**
 * What a VM Import placement leaves behind, removed: the import task
 * cancelled while it is active, the multipart upload aborted, the S3 object
 * deleted. Each step is tried whatever the others did; what failed is
 * reported, not thrown, so the caller can journal it and go on failing with
 * the error that mattered.
 */
import { CancelImportTaskCommand, type EC2Client } from '@aws-sdk/client-ec2';
import type { S3Client } from '@aws-sdk/client-s3';
import { FerryError } from '../../errors/index.js';
import { awsCode, awsFailure } from './aws-failure.js';
import { abortUpload, deleteObject } from './s3-upload.js';

/**
 * CancelImportTask. True when this call cancelled it; false when the task
 * was no longer active (finished, already being deleted) or is unknown.
 */
export async function cancelImportTask(
  ec2: EC2Client,
  taskId: string,
  reason: string,
  signal?: AbortSignal,
): Promise<boolean> {
  try {
    await ec2.send(
      new CancelImportTaskCommand({ ImportTaskId: taskId, CancelReason: reason.slice(0, 255) }),
      signal === undefined ? {} : { abortSignal: signal },
    );
    return true;
  } catch (error) {
    const code = awsCode(error);
    if (code === 'IncorrectState' || code === 'InvalidConversionTaskId') return false;
    throw awsFailure('FERRY_IMPORT_REFUSED', `cancel the import task ${taskId}`, error, signal);
  }
}

export interface CleanupTarget {
  readonly clients: { readonly ec2: EC2Client; readonly s3: S3Client };
  readonly bucket: string;
  readonly key: string;
  /** An upload to abort (a failed or abandoned one). */
  readonly uploadId?: string;
  /** An import task to cancel when it is still active. */
  readonly taskId?: string;
  /** Why (the task's CancelReason). */
  readonly reason?: string;
  /** Keep the S3 object (default: delete it). */
  readonly keepObject?: boolean;
}

export interface CleanupReport {
  readonly cancelled: boolean;
  readonly uploadAborted: boolean;
  readonly objectDeleted: boolean;
  /** What could not be removed; empty when everything went. */
  readonly errors: readonly FerryError[];
}

function asFerry(error: unknown, action: string): FerryError {
  return error instanceof FerryError ? error : awsFailure('FERRY_IMPORT_REFUSED', action, error);
}

/**
 * Removes what an import placement made. Runs without the caller's signal on
 * purpose: cleanup after an abort must still reach the cloud.
 */
export async function cleanUpImport(target: CleanupTarget): Promise<CleanupReport> {
  const { ec2, s3 } = target.clients;
  const errors: FerryError[] = [];
  let cancelled = false;
  let uploadAborted = false;
  let objectDeleted = false;
  if (target.taskId !== undefined) {
    try {
      cancelled = await cancelImportTask(
        ec2,
        target.taskId,
        target.reason ?? 'Cancelled by ferry: the publish failed.',
      );
    } catch (error) {
      errors.push(asFerry(error, `cancel ${target.taskId}`));
    }
  }
  if (target.uploadId !== undefined) {
    try {
      await abortUpload(s3, target.bucket, target.key, target.uploadId);
      uploadAborted = true;
    } catch (error) {
      errors.push(asFerry(error, `abort the upload ${target.uploadId}`));
    }
  }
  if (target.keepObject !== true) {
    try {
      await deleteObject(s3, target.bucket, target.key);
      objectDeleted = true;
    } catch (error) {
      errors.push(asFerry(error, `delete s3://${target.bucket}/${target.key}`));
    }
  }
  return { cancelled, uploadAborted, objectDeleted, errors };
}
