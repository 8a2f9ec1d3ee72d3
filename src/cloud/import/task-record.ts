/**
 * An import task as the state store keeps it: what was asked, where the
 * work stands, and every state it went through with the time it entered it.
 */
import type { ImportStatus, ImportStep } from './states.js';

export type ImportKind = 'image' | 'snapshot';

/** The formats AWS takes for a disk container (lower case here, upper case on the wire). */
export type ImportFormat = 'ova' | 'vmdk' | 'vhd' | 'vhdx' | 'raw';

export interface ImportTag {
  readonly key: string;
  readonly value: string;
}

/** The disk to import: an S3 object, named by Url (s3://) or UserBucket. */
export interface ImportDisk {
  readonly bucket: string;
  readonly key: string;
  /** The Url as given, echoed back (absent for UserBucket). */
  readonly url: string | null;
  readonly format: ImportFormat | null;
  readonly description: string | null;
  readonly deviceName: string | null;
}

/** One entry of a task's timeline: a state entered, when, and at what Progress. */
export interface TimelineEntry {
  readonly status: ImportStatus;
  /** The sub-state (StatusMessage while active), or the failure text while deleting/deleted. */
  readonly message: string | null;
  readonly progress: number | null;
  /** Milliseconds since the epoch. */
  readonly time: number;
  /** Why, where it is not plain progress (a restart resumed the task, the boot was skipped). */
  readonly note?: string;
}

export interface ImportTaskRecord {
  readonly id: string;
  readonly kind: ImportKind;
  readonly created: number;
  status: ImportStatus;
  /** The current step while active; the failure text while deleting/deleted; null when completed. */
  statusMessage: string | null;
  progress: number | null;
  /** The step the work is in (kept apart from statusMessage, which holds failures). */
  step: ImportStep | 'completed' | 'deleting' | 'deleted';
  readonly timeline: TimelineEntry[];
  readonly disk: ImportDisk;
  readonly description: string | null;
  readonly architecture: string | null;
  readonly bootMode: string | null;
  readonly platform: string | null;
  readonly licenseType: string | null;
  readonly hypervisor: string | null;
  readonly encrypted: boolean;
  readonly kmsKeyId: string | null;
  readonly clientToken: string | null;
  /** Hash of the request's parameters, for ClientToken idempotency. */
  readonly fingerprint: string;
  readonly tags: ImportTag[];
  /** Facts found while validating. */
  detectedFormat: ImportFormat | null;
  diskImageSize: number | null;
  /** What validation found, for registering the AMI (ImportImage). */
  detected: {
    architecture: string | null;
    platform: string | null;
    bootMode: 'legacy-bios' | 'uefi' | null;
  } | null;
  /** The snapshot being written or written; complete once CompleteSnapshot succeeded. */
  snapshotId: string | null;
  snapshotComplete: boolean;
  volumeSize: number | null;
  imageId: string | null;
  /** Set by CancelImportTask. */
  cancelReason: string | null;
}

/** The state store document of one account and region. */
export interface ImportDocument {
  tasks: Record<string, ImportTaskRecord>;
}

export const IMPORT_SERVICE = 'vm-import';

export function emptyDocument(): ImportDocument {
  return { tasks: {} };
}

/** Final tasks are done with: completed, or deleted after a failure or cancel. */
export function isFinal(task: Pick<ImportTaskRecord, 'status'>): boolean {
  return task.status === 'completed' || task.status === 'deleted';
}
