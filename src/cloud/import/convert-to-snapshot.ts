/**
 * The converting step: the disk's allocated 512 KiB blocks, read through
 * ferry's readers, become a new EBS snapshot through the same engine the EBS
 * direct API uses (StartSnapshot, PutSnapshotBlock, CompleteSnapshot).
 * Blocks that read as zeros are skipped: an EBS snapshot reads zeros where
 * it has no block. Only the allocation map is walked, so the cost follows
 * the data, not the virtual size.
 */
import { createHash } from 'node:crypto';
import type { DiskImage } from '../../disk/index.js';
import { FerryError } from '../../errors/index.js';
import { BLOCK_SIZE, BLOCKS_PER_GIB, type EbsEngine, MAX_VOLUME_GIB } from '../ebs/index.js';
import type { ImportContext } from './dependencies.js';
import { ImportFailure } from './import-failure.js';

/** Blocks read ahead of the one being written (4 × 512 KiB in memory). */
const READ_AHEAD = 4;

export interface ConvertProgress {
  /** Data bytes of the allocation map covered so far, and in all. */
  readonly done: number;
  readonly total: number;
}

export interface SnapshotStart {
  readonly description: string;
  readonly encrypted: boolean;
  readonly kmsKeyArn: string | null;
  /** Makes StartSnapshot idempotent for this attempt. */
  readonly clientToken: string;
}

/** The volume size in GiB a disk needs (at least 1). */
export function volumeGiB(virtualSize: number): number {
  return Math.max(1, Math.ceil(virtualSize / (BLOCK_SIZE * BLOCKS_PER_GIB)));
}

/** Indexes of the blocks that overlap data extents, in increasing order, each once. */
async function* dataBlocks(image: DiskImage, signal: AbortSignal): AsyncGenerator<number> {
  let last = -1;
  for await (const e of image.extents(signal)) {
    if (e.kind !== 'data') continue;
    const first = Math.max(Math.floor(e.offset / BLOCK_SIZE), last + 1);
    const end = Math.ceil((e.offset + e.length) / BLOCK_SIZE);
    for (let i = first; i < end; i++) yield i;
    if (end - 1 > last) last = end - 1;
  }
}

async function allocated(image: DiskImage, signal: AbortSignal): Promise<number> {
  let n = 0;
  for await (const _ of dataBlocks(image, signal)) n++;
  return n * BLOCK_SIZE;
}

/** A block of the disk, zero-padded past its end. */
async function readBlock(image: DiskImage, index: number, signal: AbortSignal): Promise<Buffer> {
  const offset = index * BLOCK_SIZE;
  const length = Math.min(BLOCK_SIZE, image.virtualSize - offset);
  const data = await image.read(offset, length, signal);
  if (length === BLOCK_SIZE) return data;
  const block = Buffer.alloc(BLOCK_SIZE);
  data.copy(block);
  return block;
}

/**
 * Starts the snapshot (announcing its id through `started` before any block
 * goes in, so a cancel or restart can find and remove it), writes the
 * blocks, and returns the id. The caller completes it.
 */
export async function writeSnapshot(
  engine: EbsEngine,
  ctx: ImportContext,
  image: DiskImage,
  start: SnapshotStart,
  hooks: {
    readonly started: (snapshotId: string, volumeSize: number) => Promise<void>;
    readonly progress: (p: ConvertProgress) => void | Promise<void>;
  },
  signal: AbortSignal,
): Promise<{ snapshotId: string; changedBlocks: number; checksum: string; volumeSize: number }> {
  const volumeSize = volumeGiB(image.virtualSize);
  if (volumeSize > MAX_VOLUME_GIB)
    throw new ImportFailure(
      `ClientError: The disk is ${image.virtualSize} bytes; an EBS volume holds at most ${MAX_VOLUME_GIB} GiB.`,
    );
  const total = await allocated(image, signal);
  const info = await engine.startSnapshot(ctx, {
    volumeSize,
    description: start.description,
    clientToken: start.clientToken,
    // The longest EBS direct allows: a large import must not time out half written.
    timeout: 4320,
    ...(start.encrypted ? { encrypted: true } : {}),
    ...(start.kmsKeyArn === null ? {} : { kmsKeyArn: start.kmsKeyArn }),
  });
  await hooks.started(info.snapshotId, volumeSize);
  // The LINEAR aggregate: SHA-256 over the blocks' SHA-256s in index order,
  // which the engine checks again on completion; blocks come in order, so it
  // is hashed as it goes rather than kept.
  const linear = createHash('sha256');
  let changed = 0;
  let done = 0;
  const queue: Array<{ index: number; data: Promise<Buffer> }> = [];
  const blocks = dataBlocks(image, signal);
  const refill = async (): Promise<void> => {
    while (queue.length < READ_AHEAD) {
      const next = await blocks.next();
      if (next.done === true) return;
      const index = next.value;
      const data = readBlock(image, index, signal);
      data.catch(() => {}); // surfaced when its turn comes
      queue.push({ index, data });
    }
  };
  await refill();
  while (queue.length > 0) {
    if (signal.aborted) throw new FerryError('FERRY_ABORTED', 'The import was cancelled');
    const { index, data } = queue.shift()!;
    const block = await data;
    await refill();
    done += BLOCK_SIZE;
    if (!block.every((b) => b === 0)) {
      const digest = createHash('sha256').update(block).digest();
      await engine.putSnapshotBlock(ctx, {
        snapshotId: info.snapshotId,
        blockIndex: index,
        data: block,
        dataLength: BLOCK_SIZE,
        checksum: digest.toString('base64'),
        checksumAlgorithm: 'SHA256',
        progress: total === 0 ? 100 : Math.floor((done / total) * 100),
      });
      linear.update(digest);
      changed++;
    }
    await hooks.progress({ done, total });
  }
  return {
    snapshotId: info.snapshotId,
    changedBlocks: changed,
    checksum: linear.digest('base64'),
    volumeSize,
  };
}
