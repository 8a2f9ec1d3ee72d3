import { BLOCK_SIZE } from './limits.js';

export type SnapshotStatus = 'pending' | 'completed' | 'error';

export interface SnapshotTag {
  readonly key: string;
  readonly value: string;
}

/**
 * What the engine keeps of one snapshot, in
 * accounts/<account>/<region>/snapshots/<id>.json (written atomically).
 * A completed snapshot's own blocks are in <id>.map beside it; a pending
 * snapshot's puts are in journals/<id>.log.
 */
export interface SnapshotRecord {
  readonly format: 'ferry-ebs-snapshot';
  readonly version: 1;
  readonly id: string;
  readonly owner: string;
  readonly region: string;
  readonly status: SnapshotStatus;
  /** Why the snapshot is in error, for people. */
  readonly statusMessage: string | null;
  /** GiB. */
  readonly volumeSize: number;
  readonly parentId: string | null;
  readonly description: string | null;
  readonly tags: readonly SnapshotTag[];
  readonly encrypted: boolean;
  readonly kmsKeyArn: string | null;
  readonly timeoutMinutes: number;
  /** Milliseconds since the epoch. */
  readonly startTime: number;
  readonly completionTime: number | null;
  readonly clientToken: string | null;
  /** SHA-256 of the StartSnapshot parameters, to tell a retry from a reuse of its token. */
  readonly requestFingerprint: string | null;
  /** Blocks the snapshot put itself, once completed. */
  readonly changedBlocks: number | null;
  /** The LINEAR aggregate checksum of those blocks, once completed. */
  readonly checksum: string | null;
  /** The last x-amz-Progress seen (100 once completed). */
  readonly progress: number;
  /**
   * When DeleteSnapshot removed it (ms). A deleted snapshot whose blocks a
   * child still reads stays on disk, hidden, until no child needs it.
   */
  readonly deleted: number | null;
}

/** A snapshot as the engine's queries report it (for DescribeSnapshots and the like). */
export interface SnapshotInfo {
  readonly snapshotId: string;
  readonly ownerId: string;
  readonly region: string;
  readonly status: SnapshotStatus;
  readonly statusMessage: string | null;
  readonly volumeSize: number;
  readonly blockSize: number;
  readonly startTime: Date;
  readonly completionTime: Date | null;
  readonly parentSnapshotId: string | null;
  readonly description: string | null;
  readonly tags: readonly SnapshotTag[];
  readonly encrypted: boolean;
  readonly kmsKeyArn: string | null;
  /** 0 to 100. */
  readonly progress: number;
  /** Blocks the snapshot put itself (so far, while pending). */
  readonly changedBlocks: number;
  readonly timeoutMinutes: number;
}

export function parseRecord(text: string): SnapshotRecord | null {
  try {
    const r = JSON.parse(text) as Partial<SnapshotRecord>;
    if (r.format !== 'ferry-ebs-snapshot' || r.version !== 1 || typeof r.id !== 'string') {
      return null;
    }
    return r as SnapshotRecord;
  } catch {
    return null;
  }
}

export function recordInfo(r: SnapshotRecord, ownPuts: number, progress: number): SnapshotInfo {
  return {
    snapshotId: r.id,
    ownerId: r.owner,
    region: r.region,
    status: r.status,
    statusMessage: r.statusMessage,
    volumeSize: r.volumeSize,
    blockSize: BLOCK_SIZE,
    startTime: new Date(r.startTime),
    completionTime: r.completionTime === null ? null : new Date(r.completionTime),
    parentSnapshotId: r.parentId,
    description: r.description,
    tags: r.tags,
    encrypted: r.encrypted,
    kmsKeyArn: r.kmsKeyArn,
    progress: r.status === 'completed' ? 100 : progress,
    changedBlocks: r.changedBlocks ?? ownPuts,
    timeoutMinutes: r.timeoutMinutes,
  };
}
