/**
 * `ferry verify STREAM@REV`: every placement's published image read back.
 * An AMI's root snapshot blocks (ListSnapshotBlocks, GetSnapshotBlock), or
 * a Glance image's data (downloaded, read as its disk format:
 * openstack/glance-verify.ts), are compared with the block digests saved
 * under the image's content hash when it was published
 * (state/digests/HASH.json), the rendered image's.
 */

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { FerryConfig } from '../config/index.js';
import { FerryError, isFerryError } from '../errors/index.js';
import { workerPool } from '../util/ordered-pool.js';
import { findImage } from './aws/register.js';
import { type VerifyResult, verifySnapshot } from './aws/verify.js';
import { type DigestsFile, readDigests } from './block-digests.js';
import { findPublished } from './openstack/glance-catalog.js';
import { GlanceClient } from './openstack/glance-client.js';
import { GLANCE_PROPERTY } from './openstack/glance-properties.js';
import { verifyGlanceImage } from './openstack/glance-verify.js';
import { resolveRevision } from './resolve-revision.js';
import { type StatePaths, statePaths } from './state-paths.js';
import { openTargets, type TargetSession } from './target-session.js';
import { type GlancePlacement, type Placement, TAG } from './types.js';

export interface VerifyPublishedInput {
  /** STREAM@REV (a unique prefix of the id with a local store). */
  readonly ref: string;
  readonly targets?: readonly string[];
  /** Blocks read at once per placement (default 8). */
  readonly concurrency?: number;
  /** Placements verified at once (default 8); the result keeps ferry.yaml's order. */
  readonly placementsAtOnce?: number;
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
  /** When its verification started (ISO 8601). */
  readonly started: string;
  readonly seconds: number;
}

export interface VerifyPublishedResult {
  readonly stream: string;
  readonly revision: string;
  readonly placements: readonly PlacementVerification[];
  /** Every placement verified with no difference. */
  readonly ok: boolean;
}

/** Placements verified at once by default. */
const PLACEMENTS_AT_ONCE = 8;

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
    const atOnce = input.placementsAtOnce ?? PLACEMENTS_AT_ONCE;
    if (!Number.isSafeInteger(atOnce) || atOnce < 1)
      throw new FerryError(
        'FERRY_USAGE',
        `Cannot verify ${stream}: placements at once must be a whole number from 1, not ${atOnce}`,
      );
    const work = session.targets.flatMap((target) => target.placements.map((p) => ({ target, p })));
    const done: Array<PlacementVerification | undefined> = [];
    await workerPool(work.entries(), atOnce, async ([i, w]) => {
      done[i] = await verifyPlacement(session, w.target.name, w.p, stream, revision, state, input);
    });
    for (const v of done) if (v !== undefined) placements.push(v);
  } finally {
    await session.close();
  }
  return { stream, revision, placements, ok: placements.every((p) => p.status === 'ok') };
}

/** One placement verified: its image found, its snapshot (or Glance data) read back and compared. */
async function verifyPlacement(
  session: TargetSession,
  target: string,
  p: Placement,
  stream: string,
  revision: string,
  state: StatePaths,
  input: VerifyPublishedInput,
): Promise<PlacementVerification> {
  const t0 = performance.now();
  const started = new Date().toISOString();
  let imageId: string | null = null;
  let snapshotId: string | null = null;
  let contentHash: string | null = null;
  const base = { key: p.key, target, region: p.region };
  try {
    if (p.cloud === 'openstack') {
      const r = await verifyInGlance(p, stream, revision, state, input.signal);
      imageId = r.imageId;
      contentHash = r.contentHash;
      return {
        ...base,
        status: r.result.ok ? 'ok' : 'differs',
        imageId,
        snapshotId: null,
        contentHash,
        result: r.result,
        error: null,
        started,
        seconds: (performance.now() - t0) / 1000,
      };
    }
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
    const file = await digestsOf(state, contentHash, p.key, imageId);
    const result = await verifySnapshot(clients, snapshotId, file.digests, {
      ...(input.signal === undefined ? {} : { signal: input.signal }),
      ...(input.concurrency === undefined ? {} : { concurrency: input.concurrency }),
    });
    return {
      ...base,
      status: result.ok ? 'ok' : 'differs',
      imageId,
      snapshotId,
      contentHash,
      result,
      error: null,
      started,
      seconds: (performance.now() - t0) / 1000,
    };
  } catch (error) {
    if (input.signal?.aborted === true || !isFerryError(error)) throw error;
    return {
      ...base,
      status: 'error',
      imageId,
      snapshotId,
      contentHash,
      result: null,
      error,
      started,
      seconds: (performance.now() - t0) / 1000,
    };
  }
}

/** A Glance placement's image downloaded and compared with the saved digests. */
async function verifyInGlance(
  p: GlancePlacement,
  stream: string,
  revision: string,
  state: StatePaths,
  signal: AbortSignal | undefined,
): Promise<{ imageId: string; contentHash: string; result: VerifyResult }> {
  const client = new GlanceClient({ session: await p.session() });
  try {
    const image = await findPublished(client, p.target, stream, revision, signal);
    if (image === undefined || image.status !== 'active')
      throw new FerryError(
        'FERRY_PUBLISH_IMAGE_NOT_FOUND',
        `Cannot verify ${stream}@${revision.slice(0, 12)} in ${p.key}: no active image of it is there`,
        {
          details: { stream, revision, placement: p.key },
          hint: `Publish it first: ferry publish ${stream}@${revision.slice(0, 12)}`,
        },
      );
    const contentHash = image.hash;
    if (contentHash === null || !/^[0-9a-f]{64}$/.test(contentHash))
      throw new FerryError(
        'FERRY_PUBLISH_DIGESTS_MISSING',
        `Cannot verify image ${image.imageId} in ${p.key}: it has no ${GLANCE_PROPERTY.contentHash} property`,
        { details: { placement: p.key, imageId: image.imageId } },
      );
    const file = await digestsOf(state, contentHash, p.key, image.imageId);
    await mkdir(state.renders, { recursive: true });
    const result = await verifyGlanceImage(client, image, file, state.renders, signal);
    return { imageId: image.imageId, contentHash, result };
  } finally {
    client.close();
  }
}

/** The digests saved for `contentHash` by the publish that rendered it. */
async function digestsOf(
  state: StatePaths,
  contentHash: string,
  placement: string,
  imageId: string,
): Promise<DigestsFile> {
  const path = join(state.digests, `${contentHash}.json`);
  const file = await readDigests(path).catch((error: unknown) => {
    if ((error as { cause?: NodeJS.ErrnoException }).cause?.code === 'ENOENT')
      throw new FerryError(
        'FERRY_PUBLISH_DIGESTS_MISSING',
        `Cannot verify image ${imageId} in ${placement}: ${path} is not there`,
        {
          details: { placement, imageId, contentHash },
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
      { details: { placement, imageId, contentHash } },
    );
  return file;
}
