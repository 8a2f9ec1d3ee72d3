/** Import tasks as EC2's XML shapes (ImportImageTask, ImportSnapshotTask; botocore's ec2 model). */
import type { XmlFields } from '../xml.js';
import type { ImportTaskRecord } from './task-record.js';

function userBucket(task: ImportTaskRecord): XmlFields | undefined {
  return task.disk.url === null ? { s3Bucket: task.disk.bucket, s3Key: task.disk.key } : undefined;
}

function tagSet(task: ImportTaskRecord): XmlFields[] | undefined {
  return task.tags.length === 0
    ? undefined
    : task.tags.map((t) => ({ key: t.key, value: t.value }));
}

const opt = (v: string | null): string | undefined => (v === null ? undefined : v);
const progress = (t: ImportTaskRecord): string | undefined =>
  t.progress === null ? undefined : String(t.progress);

/** The disk's own status: active until its snapshot is complete. */
function diskStatus(t: ImportTaskRecord): string {
  if (t.status === 'deleting' || t.status === 'deleted') return t.status;
  return t.snapshotComplete ? 'completed' : 'active';
}

export function imageTaskXml(t: ImportTaskRecord): XmlFields {
  const format = t.detectedFormat ?? t.disk.format;
  return {
    architecture: opt(t.architecture ?? t.detected?.architecture ?? null),
    description: opt(t.description),
    encrypted: t.encrypted,
    hypervisor: opt(t.hypervisor),
    imageId: opt(t.imageId),
    importTaskId: t.id,
    kmsKeyId: opt(t.kmsKeyId),
    licenseType: opt(t.licenseType),
    platform: opt(t.platform ?? t.detected?.platform ?? null),
    progress: progress(t),
    snapshotDetailSet: [
      {
        description: opt(t.disk.description),
        deviceName: t.disk.deviceName ?? '/dev/sda1',
        diskImageSize: t.diskImageSize === null ? undefined : t.diskImageSize.toFixed(1),
        format: format === null ? undefined : format.toUpperCase(),
        snapshotId: t.snapshotComplete ? opt(t.snapshotId) : undefined,
        status: diskStatus(t),
        url: opt(t.disk.url),
        userBucket: userBucket(t),
      },
    ],
    status: t.status,
    statusMessage: opt(t.statusMessage),
    tagSet: tagSet(t),
    bootMode: opt(t.bootMode ?? t.detected?.bootMode ?? null),
  };
}

export function snapshotTaskDetailXml(t: ImportTaskRecord): XmlFields {
  const format = t.detectedFormat ?? t.disk.format;
  return {
    description: opt(t.disk.description),
    diskImageSize: t.diskImageSize === null ? undefined : t.diskImageSize.toFixed(1),
    encrypted: t.encrypted,
    format: format === null ? undefined : format.toUpperCase(),
    kmsKeyId: opt(t.kmsKeyId),
    progress: progress(t),
    snapshotId: t.snapshotComplete ? opt(t.snapshotId) : undefined,
    status: t.status,
    statusMessage: opt(t.statusMessage),
    url: opt(t.disk.url),
    userBucket: userBucket(t),
  };
}

export function snapshotTaskXml(t: ImportTaskRecord): XmlFields {
  return {
    description: opt(t.description),
    importTaskId: t.id,
    snapshotTaskDetail: snapshotTaskDetailXml(t),
    tagSet: tagSet(t),
  };
}
