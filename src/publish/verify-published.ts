/**
 * `ferry verify STREAM@REV`: every placement's published image read back.
 * Its root snapshot's blocks (ListSnapshotBlocks, GetSnapshotBlock) are
 * compared with the block digests saved under the image's content-hash tag
 * when it was published (state/digests/HASH.json), the rendered image's.
 */

import { join } from 'node:path';
import type { FerryConfig } from '../config/index.js';
import { FerryError, isFerryError } from '../errors/index.js';
import { findImage } from './aws/register.js';
import { type VerifyResult, verifySnapshot } from './aws/verify.js';
import { readDigests } from './block-digests.js';
import { resolveRevision } from './resolve-revision.js';
import { statePaths } from './state-paths.js';
import { openTargets } from './target-session.js';
import { TAG } from './types.js';

export interface VerifyPublishedInput {
  /** STREAM@REV (a unique prefix of the id with a local store). */
  readonly ref: string;
  readonly targets?: readonly string[];
  /** Blocks read at once per placement (default 8). */
  readonly concurrency?: number;
  readonly signal?: AbortSignal;
}

export interface PlacementVerification {
  readonly key: string;
  readonly target: string;
  readonly region: string;
  /** ok: every block as published; differs: see the counts; error: nothing could be compared. */
  readonly status: 'ok' | 'differs' | 'error';
  readonly imageId: string | null;
  readonly snapshotId: string | null;
  readonly contentHash: string | null;
  readonly result: VerifyResult | null;
  readonly error: FerryError | null;
  readonly seconds: number;
}

export interface VerifyPublishedResult {
  readonly stream: string;
  readonly revision: string;
  readonly placements: readonly PlacementVerification[];
  /** Every placement verified with no difference. */
  readonly ok: boolean;
}

export async function verifyPublished(
  config: FerryConfig,
  input: VerifyPublishedInput,
): Promise<VerifyPublishedResult> {
  const { stream, revision } = await resolveRevision(config, input.ref, 'verify');
  const state = statePaths(config.state);
  const session = await openTargets(config, {
    stream,
    ...(input.targets === undefined ? {} : { only: input.targets }),
  });
  const placements: PlacementVerification[] = [];
  try {
    if (session.targets.length === 0)
      throw new FerryError(
        'FERRY_USAGE',
        `Cannot verify ${stream}: no target in ferry.yaml takes it`,
      );
    for (const target of session.targets)
      for (const p of target.placements) {
        const t0 = performance.now();
        let imageId: string | null = null;
        let snapshotId: string | null = null;
        let contentHash: string | null = null;
        const base = { key: p.key, target: target.name, region: p.region };
        try {
          const clients = session.clients(p);
          const image = await findImage(clients, stream, revision, input.signal);
          if (image === undefined)
            throw new FerryError(
              'FERRY_PUBLISH_IMAGE_NOT_FOUND',
              `Cannot verify ${stream}@${revision.slice(0, 12)} in ${p.key}: no image of it is there`,
              {
                details: { stream, revision, placement: p.key },
                hint: `Publish it first: ferry publish ${stream}@${revision.slice(0, 12)}`,
              },
            );
          imageId = image.imageId;
          snapshotId = image.snapshotIds[0] ?? null;
          if (snapshotId === null)
            throw new FerryError(
              'FERRY_PUBLISH_IMAGE_NOT_FOUND',
              `Cannot verify image ${imageId} in ${p.key}: it has no root snapshot`,
              { details: { stream, revision, placement: p.key, imageId } },
            );
          contentHash = image.tags[TAG.contentHash] ?? null;
          if (contentHash === null || !/^[0-9a-f]{64}$/.test(contentHash))
            throw new FerryError(
              'FERRY_PUBLISH_DIGESTS_MISSING',
              `Cannot verify image ${imageId} in ${p.key}: it has no ${TAG.contentHash} tag`,
              { details: { placement: p.key, imageId } },
            );
          const path = join(state.digests, `${contentHash}.json`);
          const file = await readDigests(path).catch((error: unknown) => {
            if ((error as { cause?: NodeJS.ErrnoException }).cause?.code === 'ENOENT')
              throw new FerryError(
                'FERRY_PUBLISH_DIGESTS_MISSING',
                `Cannot verify image ${imageId} in ${p.key}: ${path} is not there`,
                {
                  details: { placement: p.key, imageId, contentHash },
                  hint: 'The digests are saved by the publish that rendered the image; publish the revision again from this state directory',
                  cause: error,
                },
              );
            throw error;
          });
          if (file.contentHash !== contentHash)
            throw new FerryError(
              'FERRY_PUBLISH_DIGESTS_INVALID',
              `Cannot read the block digests ${path}: they are of content ${file.contentHash.slice(0, 12)}, not ${contentHash.slice(0, 12)}`,
              { details: { placement: p.key, imageId, contentHash } },
            );
          const result = await verifySnapshot(clients, snapshotId, file.digests, {
            ...(input.signal === undefined ? {} : { signal: input.signal }),
            ...(input.concurrency === undefined ? {} : { concurrency: input.concurrency }),
          });
          placements.push({
            ...base,
            status: result.ok ? 'ok' : 'differs',
            imageId,
            snapshotId,
            contentHash,
            result,
            error: null,
            seconds: (performance.now() - t0) / 1000,
          });
        } catch (error) {
          if (input.signal?.aborted === true || !isFerryError(error)) throw error;
          placements.push({
            ...base,
            status: 'error',
            imageId,
            snapshotId,
            contentHash,
            result: null,
            error,
            seconds: (performance.now() - t0) / 1000,
          });
        }
      }
  } finally {
    await session.close();
  }
  return { stream, revision, placements, ok: placements.every((p) => p.status === 'ok') };
}
