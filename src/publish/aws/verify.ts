import { createHash } from 'node:crypto';
import { GetSnapshotBlockCommand, ListSnapshotBlocksCommand } from '@aws-sdk/client-ebs';
import { FerryError } from '../../errors/index.js';
import { workerPool } from '../../util/ordered-pool.js';
import { type BlockDigests, blockDigests } from '../block-digests.js';
import { ZERO_BLOCK_SHA256 } from '../digest-table.js';
import { BLOCK_SIZE, type BlockSource } from '../types.js';
import { awsCall, EBS_ATTEMPTS } from './aws-call.js';
import { type AwsClients, ebsSendOptions } from './clients.js';

export interface VerifyResult {
  /** Blocks the snapshot holds (ListSnapshotBlocks). */
  readonly blocks: number;
  /** Blocks whose bytes differ from the source's (or from their own checksum). */
  readonly mismatches: readonly number[];
  /** Blocks holding data in the source that the snapshot lacks. */
  readonly missing: readonly number[];
  /** Blocks the snapshot holds, not all zeros, where the source has none. */
  readonly extra: readonly number[];
  readonly ok: boolean;
}

export interface VerifyOptions {
  readonly signal?: AbortSignal;
  /** Blocks read at once (default 8). */
  readonly concurrency?: number;
}

function isSource(x: BlockSource | BlockDigests): x is BlockSource {
  return typeof (x as BlockSource).readBlock === 'function';
}

/**
 * Reads a completed snapshot back through EBS direct and compares it with
 * its source (or the source's digests): every block the snapshot holds is
 * fetched, its bytes hashed and compared with both the Checksum EBS sends
 * and the source's digest; zero and hole blocks must be absent or all zeros.
 */
export async function verifySnapshot(
  clients: AwsClients,
  snapshotId: string,
  against: BlockSource | BlockDigests,
  options: VerifyOptions = {},
): Promise<VerifyResult> {
  const { signal } = options;
  const send = ebsSendOptions(clients, signal);
  const retry = { attempts: EBS_ATTEMPTS, ...(signal === undefined ? {} : { signal }) };
  const expected: BlockDigests = isSource(against)
    ? await blockDigests(against, signal === undefined ? {} : { signal })
    : against;
  const listed: Array<[number, string]> = [];
  let token: string | undefined;
  do {
    const r = await awsCall(
      'list the snapshot blocks',
      () =>
        clients.ebs.send(
          new ListSnapshotBlocksCommand({
            SnapshotId: snapshotId,
            MaxResults: 10000,
            ...(token === undefined ? {} : { NextToken: token }),
          }),
          send,
        ),
      retry,
    );
    for (const b of r.Blocks ?? []) {
      if (b.BlockIndex !== undefined && b.BlockToken !== undefined)
        listed.push([b.BlockIndex, b.BlockToken]);
    }
    token = r.NextToken;
  } while (token !== undefined && token !== '');

  const mismatches: number[] = [];
  const extra: number[] = [];
  await workerPool(listed, Math.max(1, options.concurrency ?? 8), async ([index, blockToken]) => {
    const r = await awsCall(
      'read a snapshot block',
      async () => {
        const got = await clients.ebs.send(
          new GetSnapshotBlockCommand({
            SnapshotId: snapshotId,
            BlockIndex: index,
            BlockToken: blockToken,
          }),
          send,
        );
        const bytes = Buffer.from(
          (await got.BlockData?.transformToByteArray()) ?? new Uint8Array(),
        );
        return { bytes, checksum: got.Checksum };
      },
      retry,
    );
    const actual =
      r.bytes.length === BLOCK_SIZE ? createHash('sha256').update(r.bytes).digest('base64') : '';
    const want = expected.get(index);
    if (actual !== r.checksum) mismatches.push(index);
    else if (want === undefined || want === ZERO_BLOCK_SHA256) {
      if (actual !== ZERO_BLOCK_SHA256) extra.push(index);
    } else if (actual !== want) mismatches.push(index);
  });
  const have = new Set(listed.map(([i]) => i));
  const missing: number[] = [];
  for (const [index, digest] of expected) {
    if (digest !== ZERO_BLOCK_SHA256 && !have.has(index)) missing.push(index);
  }
  const sort = (a: number[]) => a.sort((x, y) => x - y);
  return {
    blocks: listed.length,
    mismatches: sort(mismatches),
    missing: sort(missing),
    extra: sort(extra),
    ok: mismatches.length === 0 && missing.length === 0 && extra.length === 0,
  };
}

/** Throws FERRY_EBS_VERIFY_FAILED unless the verification found nothing. */
export function assertVerified(snapshotId: string, result: VerifyResult): void {
  if (result.ok) return;
  const first =
    [...result.mismatches, ...result.missing, ...result.extra].sort((a, b) => a - b)[0] ?? -1;
  throw new FerryError(
    'FERRY_EBS_VERIFY_FAILED',
    `Cannot verify snapshot ${snapshotId}: ${result.mismatches.length} blocks differ, ${result.missing.length} are missing, ${result.extra.length} should be empty`,
    {
      details: {
        snapshotId,
        mismatches: result.mismatches.length,
        missing: result.missing.length,
        extra: result.extra.length,
        firstBlock: first,
      },
    },
  );
}
