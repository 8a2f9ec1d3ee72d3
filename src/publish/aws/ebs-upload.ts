import { createHash } from 'node:crypto';
import {
  CompleteSnapshotCommand,
  PutSnapshotBlockCommand,
  StartSnapshotCommand,
} from '@aws-sdk/client-ebs';
import { DescribeSnapshotsCommand } from '@aws-sdk/client-ec2';
import { FerryError } from '../../errors/index.js';
import { workerPool } from '../../util/ordered-pool.js';
import { AdaptiveLimit, type LimitOutcome } from '../adaptive-limit.js';
import type { BlockDigests } from '../block-digests.js';
import { ZERO_BLOCK_SHA256 } from '../digest-table.js';
import { type BorrowedBlock, isSharedBlockSource } from '../shared-block-reads.js';
import {
  BLOCK_SIZE,
  type BlockInfo,
  type BlockSource,
  type Checkpoint,
  type Placement,
  type PublishEvent,
  TAG,
} from '../types.js';
import {
  aborted,
  awsCall,
  awsErrorCode,
  awsFailure,
  backoff,
  EBS_ATTEMPTS,
  isThrottle,
  isTransient,
  sleep,
} from './aws-call.js';
import { planBlock } from './block-plan.js';
import { type AwsClients, ebsSendOptions } from './clients.js';
import { DoneTracker, type EbsCheckpoint } from './done-tracker.js';
import { resolveKmsKey } from './kms-key.js';
import { deleteSnapshot, snapshotState, waitCompleted } from './snapshots.js';

export { planBlock } from './block-plan.js';
export type { EbsCheckpoint } from './done-tracker.js';
export { deleteSnapshot, waitCompleted } from './snapshots.js';

export interface UploadSnapshotOptions {
  readonly clients: AwsClients;
  readonly placement: Placement;
  readonly source: BlockSource;
  /** The previous snapshot of the stream and what it holds: only differing blocks are sent. */
  readonly parent?: { readonly snapshotId: string; readonly digests: BlockDigests };
  /** With a parent, must be the parent's encryption (a child takes it; EBS refuses Encrypted with a parent). */
  readonly encrypted: boolean;
  /** A KMS key id, alias or ARN (resolved to its ARN); none: the account's default EBS key. */
  readonly kmsKeyId?: string;
  /** StartSnapshot's idempotency token: the same token gives the same snapshot back. */
  readonly clientToken: string;
  readonly description: string;
  readonly tags: Readonly<Record<string, string>>;
  /** Blocks in flight at most (halved on throttling, grown back on success). */
  readonly concurrency: number;
  /**
   * The placement's shared limit, when its other work should feel this
   * upload's throttling (default: one of `concurrency` for this upload).
   * Workers are `concurrency`; the limit decides how many send at once.
   */
  readonly limit?: AdaptiveLimit;
  /** Minutes the snapshot may stay pending without a write before EBS fails it (10 to 4320; 60). */
  readonly timeoutMinutes?: number;
  readonly checkpoint: Checkpoint<EbsCheckpoint>;
  readonly signal?: AbortSignal;
  readonly onEvent?: (event: PublishEvent) => void;
  /** How long to wait for `completed` after CompleteSnapshot (default 6 hours). */
  readonly waitTimeoutMs?: number;
  /** Save the checkpoint after this many finished blocks (default 64) or milliseconds (2000). */
  readonly checkpointEvery?: { readonly blocks?: number; readonly ms?: number };
}

export interface UploadSnapshotResult {
  readonly snapshotId: string;
  /** Blocks sent by this call. */
  readonly blocksSent: number;
  /** Blocks the rules skipped (holes, zeros on unencrypted snapshots, unchanged since the parent). */
  readonly blocksSkipped: number;
  /** Blocks an earlier, interrupted call had sent already. */
  readonly blocksResumed: number;
  /** ChangedBlocksCount: every block the snapshot holds of its own. */
  readonly changedBlocks: number;
  readonly bytesSent: number;
  readonly seconds: number;
  /** How the call began: a new snapshot, a pending one continued, or one already completed. */
  readonly start: 'new' | 'resumed' | 'completed';
}

const GIB = 1024 ** 3;
const MAX_VOLUME_GIB = 65536;
const ZERO_BLOCK = Buffer.alloc(BLOCK_SIZE);
/** Retries of "snapshot does not exist" right after StartSnapshot (12 with backoff: ~2 minutes). */
const NOT_FOUND_RETRIES = 12;
/** The lead's AdaptiveLimit takes at most this many at once. */
const MAX_CONCURRENCY = 10_000;
/** Attempts for a block when throttled or failing transiently. */
const BLOCK_ATTEMPTS = 30;

const SNAPSHOT_ID = /^snap-[0-9a-f]{8,32}$/;

function checkCheckpoint(raw: unknown): EbsCheckpoint | undefined {
  if (raw === undefined) return undefined;
  const c = raw as Partial<EbsCheckpoint> | null;
  const ok =
    c !== null &&
    typeof c === 'object' &&
    typeof c.snapshotId === 'string' &&
    SNAPSHOT_ID.test(c.snapshotId) &&
    Number.isSafeInteger(c.watermark) &&
    (c.watermark ?? -1) >= 0 &&
    Array.isArray(c.done) &&
    c.done.length <= 1_000_000 &&
    c.done.every((i) => Number.isSafeInteger(i) && i >= 0) &&
    (c.contentHash === undefined || typeof c.contentHash === 'string');
  if (!ok) {
    throw new FerryError(
      'FERRY_EBS_INPUT',
      'Cannot resume the snapshot upload: its checkpoint is malformed',
      {
        hint: 'Start again with an empty checkpoint and a new client token',
      },
    );
  }
  return c as EbsCheckpoint;
}

function restart(snapshotId: string, state: string, deleted: boolean): FerryError {
  return new FerryError(
    'FERRY_EBS_SNAPSHOT_RESTART',
    `Cannot continue snapshot ${snapshotId}: it is ${state}`,
    {
      details: { snapshotId, state, deleted },
      hint: 'Start a new snapshot: an empty checkpoint and a new client token (the old token names this snapshot)',
    },
  );
}

/**
 * Uploads a BlockSource as an EBS snapshot with EBS direct, or continues
 * the one in the checkpoint. The snapshot id is saved in the checkpoint as
 * soon as StartSnapshot answers, and the finished blocks every 64 blocks or
 * 2 s, so a call after a crash or an abort sends only the rest. A
 * checkpointed snapshot that went to error or is gone throws
 * FERRY_EBS_SNAPSHOT_RESTART (an errored one is deleted first); one that
 * completed is returned as it is. Memory: `concurrency` 512 KiB buffers and
 * one digest per block written; a SharedBlockSource (shareBlockReads) lends
 * its blocks instead, so placements of one run read each block once.
 */
export async function uploadSnapshot(opts: UploadSnapshotOptions): Promise<UploadSnapshotResult> {
  const { clients, source, signal } = opts;
  const began = performance.now();
  const where = opts.placement.key;
  if (signal?.aborted === true) throw aborted(signal, 'upload the snapshot');
  const volumeGiB = Math.max(1, Math.ceil(source.size / GIB));
  if (volumeGiB > MAX_VOLUME_GIB) {
    throw new FerryError(
      'FERRY_EBS_INPUT',
      `Cannot upload ${source.size} bytes: EBS volumes are at most 64 TiB`,
      {
        details: { size: source.size },
      },
    );
  }
  const result = (
    snapshotId: string,
    start: UploadSnapshotResult['start'],
    counts: Partial<UploadSnapshotResult> = {},
  ): UploadSnapshotResult => ({
    snapshotId,
    blocksSent: 0,
    blocksSkipped: 0,
    blocksResumed: 0,
    changedBlocks: 0,
    bytesSent: 0,
    ...counts,
    seconds: (performance.now() - began) / 1000,
    start,
  });

  // A child takes its parent's encryption; the parent must not be larger than the image.
  let encrypted = opts.encrypted;
  if (opts.parent !== undefined) {
    const parentId = opts.parent.snapshotId;
    const r = await awsCall(
      'describe the parent snapshot',
      () =>
        clients.ec2.send(
          new DescribeSnapshotsCommand({ SnapshotIds: [parentId] }),
          signal === undefined ? {} : { abortSignal: signal },
        ),
      signal === undefined ? {} : { signal },
    );
    const p = r.Snapshots?.[0];
    if (p === undefined || p.State !== 'completed') {
      throw new FerryError(
        'FERRY_EBS_INPUT',
        `Cannot use ${parentId} as the parent: it is not a completed snapshot`,
        {
          details: { parent: parentId, state: p?.State ?? 'missing' },
        },
      );
    }
    if ((p.VolumeSize ?? 0) > volumeGiB) {
      throw new FerryError(
        'FERRY_EBS_INPUT',
        `Cannot use ${parentId} as the parent: its volume (${p.VolumeSize} GiB) is larger than the image's (${volumeGiB} GiB)`,
        { details: { parent: parentId, parentGiB: p.VolumeSize ?? 0, volumeGiB } },
      );
    }
    encrypted = p.Encrypted === true;
    if (encrypted !== opts.encrypted) {
      throw new FerryError(
        'FERRY_EBS_INPUT',
        `Cannot use ${parentId} as the parent: it is ${encrypted ? '' : 'not '}encrypted and the target asks otherwise`,
        {
          details: { parent: parentId, parentEncrypted: encrypted },
          hint: 'A child takes its parent encryption: pick a parent encrypted as the target is (findParent does)',
        },
      );
    }
  }

  // Start, or find the checkpointed snapshot again.
  let snapshotId: string;
  let start: UploadSnapshotResult['start'] = 'new';
  const saved = checkCheckpoint(await opts.checkpoint.load());
  let tracker: DoneTracker;
  if (saved !== undefined) {
    // A checkpoint of another image's upload: continuing would mix two images.
    if (saved.contentHash !== undefined && saved.contentHash !== source.contentHash)
      throw restart(saved.snapshotId, 'the upload of another image', false);
    const { state } = await snapshotState(clients, saved.snapshotId, signal);
    if (state === 'completed') return result(saved.snapshotId, 'completed');
    if (state !== 'pending') {
      const deleted =
        state === 'error'
          ? await deleteSnapshot(clients, saved.snapshotId, signal).catch(() => false)
          : false;
      throw restart(saved.snapshotId, state, deleted);
    }
    snapshotId = saved.snapshotId;
    start = 'resumed';
    tracker = new DoneTracker(saved);
  } else {
    const tags = { [TAG.contentHash]: source.contentHash, ...opts.tags };
    const keyArn =
      opts.parent === undefined && opts.encrypted && opts.kmsKeyId !== undefined
        ? await resolveKmsKey(clients, opts.kmsKeyId, signal)
        : undefined;
    const started = await awsCall(
      'start the snapshot',
      () =>
        clients.ebs.send(
          new StartSnapshotCommand({
            VolumeSize: volumeGiB,
            ClientToken: opts.clientToken,
            Description: opts.description,
            Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
            ...(opts.timeoutMinutes === undefined ? {} : { Timeout: opts.timeoutMinutes }),
            ...(opts.parent !== undefined
              ? { ParentSnapshotId: opts.parent.snapshotId }
              : opts.encrypted
                ? {
                    Encrypted: true,
                    ...(keyArn === undefined ? {} : { KmsKeyArn: keyArn }),
                  }
                : {}),
          }),
          ebsSendOptions(clients, signal),
        ),
      { attempts: EBS_ATTEMPTS, ...(signal === undefined ? {} : { signal }) },
    );
    snapshotId = started.SnapshotId ?? '';
    if (!SNAPSHOT_ID.test(snapshotId)) {
      throw new FerryError(
        'FERRY_AWS_REQUEST',
        'Cannot start the snapshot: StartSnapshot answered no snapshot id',
        {
          details: { operation: 'StartSnapshot', awsCode: 'none', status: null },
        },
      );
    }
    if (started.Status === 'completed') return result(snapshotId, 'completed');
    if (started.Status === 'error') throw restart(snapshotId, 'error', false);
    await opts.checkpoint.save({
      snapshotId,
      watermark: 0,
      done: [],
      contentHash: source.contentHash,
    });
    tracker = new DoneTracker();
  }
  const startedAt = Date.now();

  // Workers over one block iterator, a buffer each.
  const limit =
    opts.limit ??
    new AdaptiveLimit({
      max: Math.min(MAX_CONCURRENCY, Math.max(1, Math.floor(opts.concurrency))),
    });
  const parentDigests = opts.parent?.digests;
  const written: Array<[number, string]> = [];
  const free: Buffer[] = [];
  let sent = 0;
  let skipped = 0;
  let resumed = 0;
  let bytes = 0;
  const everyBlocks = opts.checkpointEvery?.blocks ?? 64;
  const everyMs = opts.checkpointEvery?.ms ?? 2000;
  let sinceSave = 0;
  let lastSave = Date.now();
  let saving: Promise<void> | undefined;
  const emitBlocks = (): void =>
    opts.onEvent?.({
      type: 'blocks',
      placement: where,
      // Blocks an interrupted call sent count as sent: sent + skipped reaches total.
      sent: sent + resumed,
      skipped,
      total: source.blockCount,
      bytes,
    });
  const save = async (): Promise<void> => {
    while (saving !== undefined) await saving;
    sinceSave = 0;
    lastSave = Date.now();
    saving = opts.checkpoint.save(tracker.snapshot(snapshotId, source.contentHash));
    try {
      await saving;
    } finally {
      saving = undefined;
    }
    emitBlocks();
  };
  const finished = async (index: number): Promise<void> => {
    tracker.finish(index);
    sinceSave++;
    if (saving === undefined && (sinceSave >= everyBlocks || Date.now() - lastSave >= everyMs))
      await save();
  };

  const put = async (index: number, data: Buffer, digest: string): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      const ticket = await limit.acquire(signal);
      let outcome: LimitOutcome = 'failure';
      let failure: unknown;
      try {
        await clients.ebs.send(
          new PutSnapshotBlockCommand({
            SnapshotId: snapshotId,
            BlockIndex: index,
            BlockData: data,
            DataLength: BLOCK_SIZE,
            Checksum: digest,
            ChecksumAlgorithm: 'SHA256',
          }),
          ebsSendOptions(clients, signal),
        );
        outcome = 'success';
        return;
      } catch (error) {
        failure = error;
        if (isThrottle(error)) outcome = 'throttled';
      } finally {
        const before = limit.limit;
        limit.release(outcome, ticket);
        if (outcome === 'throttled' && limit.limit < before)
          opts.onEvent?.({ type: 'throttled', placement: where, concurrency: limit.limit });
      }
      if (isAborted(signal)) throw aborted(signal!, 'upload the snapshot');
      const last = attempt + 1 >= BLOCK_ATTEMPTS;
      // EBS may not know a snapshot yet right after StartSnapshot.
      const early =
        awsErrorCode(failure) === 'ResourceNotFoundException' &&
        attempt < NOT_FOUND_RETRIES &&
        Date.now() - startedAt < 5 * 60_000;
      if (last || !(early || isTransient(failure))) {
        throw awsFailure('put a snapshot block', failure, signal, {
          snapshotId,
          blockIndex: index,
        });
      }
      await sleep(backoff(attempt, failure), signal);
    }
  };

  const work = async (b: BlockInfo): Promise<void> => {
    if (signal?.aborted === true) throw aborted(signal, 'upload the snapshot');
    let buf: Buffer | undefined;
    let borrowed: BorrowedBlock | undefined;
    try {
      let digest = b.kind === 'hole' ? undefined : b.kind === 'zero' ? ZERO_BLOCK_SHA256 : b.sha256;
      let loaded = false;
      if (b.kind === 'data' && digest === undefined) {
        buf = free.pop() ?? Buffer.allocUnsafe(BLOCK_SIZE);
        await source.readBlock(b.index, buf, signal);
        loaded = true;
        digest = isZeroBlock(buf)
          ? ZERO_BLOCK_SHA256
          : createHash('sha256').update(buf).digest('base64');
      }
      const decision = planBlock(b.index, digest, encrypted, parentDigests);
      if (!decision.send) {
        skipped++;
        await finished(b.index);
        return;
      }
      written.push([b.index, decision.digest]);
      if (tracker.isDone(b.index)) {
        resumed++;
        return;
      }
      let data: Buffer = ZERO_BLOCK;
      if (!decision.zeros) {
        if (loaded) data = buf!;
        else if (isSharedBlockSource(source)) {
          // Other placements of this run may have read it already: borrow, do not copy.
          borrowed = await source.borrowBlock(b.index, signal);
          data = borrowed.data;
        } else {
          buf = free.pop() ?? Buffer.allocUnsafe(BLOCK_SIZE);
          await source.readBlock(b.index, buf, signal);
          data = buf;
        }
      }
      await put(b.index, data, decision.digest);
      sent++;
      bytes += BLOCK_SIZE;
      await finished(b.index);
    } finally {
      if (buf !== undefined) free.push(buf);
      borrowed?.release();
    }
  };

  try {
    await workerPool(
      withParentTail(source, parentDigests, signal),
      Math.max(1, opts.concurrency),
      work,
    );
  } catch (error) {
    if (isAborted(signal)) throw aborted(signal!, 'upload the snapshot');
    throw error;
  } finally {
    // What finished is kept, failure or not: a later call sends only the rest.
    await save();
  }

  // Complete with the block count and the LINEAR checksum, then wait for `completed`.
  written.sort((a, b) => a[0] - b[0]);
  const linear = createHash('sha256');
  for (const [, d] of written) linear.update(Buffer.from(d, 'base64'));
  const checksum = linear.digest('base64');
  await awsCall(
    'complete the snapshot',
    () =>
      clients.ebs.send(
        new CompleteSnapshotCommand({
          SnapshotId: snapshotId,
          ChangedBlocksCount: written.length,
          Checksum: checksum,
          ChecksumAlgorithm: 'SHA256',
          ChecksumAggregationMethod: 'LINEAR',
        }),
        ebsSendOptions(clients, signal),
      ),
    { attempts: EBS_ATTEMPTS, ...(signal === undefined ? {} : { signal }) },
  );
  await waitCompleted(clients, snapshotId, opts.waitTimeoutMs ?? 6 * 3600_000, signal);
  return result(snapshotId, start, {
    blocksSent: sent,
    blocksSkipped: skipped,
    blocksResumed: resumed,
    changedBlocks: written.length,
    bytesSent: bytes,
  });
}

/**
 * The source's blocks, then, as holes, the blocks past its end where the
 * parent held data (a smaller image in the same volume size): they are
 * written as zeros, so the child reads as the image does.
 */
async function* withParentTail(
  source: BlockSource,
  parent: BlockDigests | undefined,
  signal?: AbortSignal,
): AsyncIterable<BlockInfo> {
  yield* source.blocks(signal);
  if (parent === undefined) return;
  const tail = [...parent.keys()].filter((i) => i >= source.blockCount).sort((a, b) => a - b);
  for (const index of tail) yield { index, kind: 'hole' };
}

function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

function isZeroBlock(buf: Buffer): boolean {
  return buf.equals(ZERO_BLOCK);
}
