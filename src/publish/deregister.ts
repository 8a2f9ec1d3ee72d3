/**
 * `ferry deregister STREAM@REV`: per placement, the revision's image is
 * deregistered and then its snapshots deleted (in that order: a snapshot an
 * image uses cannot be deleted). The removal is a run in the journal, with
 * one `deregister` step per placement, so `ferry images ls` and `ferry
 * history` know it; it holds the state lock as a publish does. Placements
 * are searched and cleared 8 at once (the order within one placement
 * stays); after a failure no other removal starts. Nothing there is not an
 * error. `removeImages` is the journaled removal itself,
 * shared with prune.
 */

import type { FerryConfig } from '../config/index.js';
import { FerryError } from '../errors/index.js';
import { workerPool } from '../util/ordered-pool.js';
import type { ImageCatalog } from './image-catalog.js';
import { Journal, listRuns, newRunId } from './journal.js';
import { resolveRevision } from './resolve-revision.js';
import { type StatePaths, statePaths, withStateLock } from './state-paths.js';
import { errorRecord } from './steps.js';
import { openTargets } from './target-session.js';

export interface DeregisterInput {
  /** STREAM@REV (a unique prefix of the id with a local store). */
  readonly ref: string;
  readonly targets?: readonly string[];
  readonly version: string;
  readonly signal?: AbortSignal;
}

/** One image to remove from one placement. */
export interface Removal {
  readonly placement: string;
  readonly catalog: ImageCatalog;
  readonly imageId: string;
  readonly snapshotIds: readonly string[];
  /** The image's ferry:revision tag. */
  readonly revision: string | null;
}

export interface RemovedImage {
  readonly placement: string;
  readonly imageId: string;
  readonly revision: string | null;
  readonly snapshotIds: readonly string[];
  /** False when the image was already gone. */
  readonly deregistered: boolean;
  readonly deletedSnapshots: readonly string[];
}

export interface DeregisterResult {
  readonly stream: string;
  readonly revision: string;
  /** Null when nothing was there (no run written). */
  readonly runId: string | null;
  readonly removed: readonly RemovedImage[];
  /** Placements that had no image of the revision. */
  readonly absent: readonly string[];
}

/**
 * A run id after every run's in the state directory: ids sort by the
 * second, so a removal in the same second as the publish it undoes could
 * otherwise sort before it (and `ferry images ls` would show the image).
 */
async function laterRunId(state: StatePaths): Promise<string> {
  const last = (await listRuns(state.runs)).at(-1) ?? '';
  for (;;) {
    const id = newRunId();
    if (id > last) return id;
    await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 5));
  }
}

/**
 * Removes the images as one journaled run (the caller holds the state
 * lock): per image a `deregister` step, started, then done once the image
 * is deregistered and its snapshots deleted. A run's steps are keyed by
 * placement, so a run removes at most one image per placement (a prune
 * writes one run per revision).
 */
export async function removeImages(
  state: StatePaths,
  request: {
    readonly stream: string;
    readonly revision: string | null;
    readonly targets: readonly string[];
  },
  removals: readonly Removal[],
  options: { readonly version: string; readonly signal?: AbortSignal },
): Promise<{ runId: string; removed: RemovedImage[] }> {
  const keys = removals.map((r) => r.placement);
  if (new Set(keys).size !== keys.length)
    throw new FerryError(
      'FERRY_INTERNAL',
      'Cannot journal the removal: one run removes at most one image per placement',
    );
  const runId = await laterRunId(state);
  const journal = await Journal.open(state.runs, runId);
  const removed: RemovedImage[] = [];
  try {
    await journal.append({
      type: 'run',
      state: 'started',
      request: {
        stream: request.stream,
        revision: request.revision,
        image: null,
        targets: request.targets,
        kind: 'deregister',
      },
      version: options.version,
    });
    // Placements at once (each removes its image first, then its snapshots);
    // after a failure no other removal starts, and the first error is thrown.
    const done: Array<RemovedImage | undefined> = [];
    await workerPool(removals.entries(), REMOVALS_AT_ONCE, async ([i, r]) => {
      options.signal?.throwIfAborted();
      done[i] = await removeOne(journal, r, options.signal);
    });
    for (const x of done) if (x !== undefined) removed.push(x);
    await journal.append({ type: 'run', state: 'done' });
    return { runId, removed };
  } catch (error) {
    await journal
      .append({
        type: 'run',
        state: options.signal?.aborted === true ? 'aborted' : 'failed',
        error: errorRecord(error),
      })
      .catch(() => {});
    throw error;
  } finally {
    await journal.close();
  }
}

/** One image removed (deregistered, then its snapshots deleted), journaled as its placement's step. */
async function removeOne(
  journal: Journal,
  r: Removal,
  signal: AbortSignal | undefined,
): Promise<RemovedImage> {
  const step = 'deregister';
  const detail = { imageId: r.imageId, snapshotIds: [...r.snapshotIds], revision: r.revision };
  await journal.append({
    type: 'step',
    placement: r.placement,
    step,
    state: 'started',
    detail,
  });
  try {
    const gone = await r.catalog.remove(r.imageId, r.snapshotIds, signal);
    const done = { deregistered: gone.removed, deletedSnapshots: gone.removedParts };
    await journal.append({
      type: 'step',
      placement: r.placement,
      step,
      state: 'done',
      detail: {
        ...detail,
        deregistered: done.deregistered,
        deletedSnapshots: [...done.deletedSnapshots],
      },
    });
    return { ...detail, placement: r.placement, ...done };
  } catch (error) {
    await journal
      .append({
        type: 'step',
        placement: r.placement,
        step,
        state: 'failed',
        error: errorRecord(error),
      })
      .catch(() => {});
    throw error;
  }
}

/** Images removed at once, each in its own placement. */
const REMOVALS_AT_ONCE = 8;

/** Placements searched at once for the image to remove. */
const FINDS_AT_ONCE = 8;

export async function deregisterPublished(
  config: FerryConfig,
  input: DeregisterInput,
): Promise<DeregisterResult> {
  const { stream, revision } = await resolveRevision(config, input.ref, 'deregister');
  const state = statePaths(config.state);
  const session = await openTargets(config, {
    stream,
    ...(input.targets === undefined ? {} : { only: input.targets }),
  });
  try {
    if (session.targets.length === 0)
      throw new FerryError(
        'FERRY_USAGE',
        `Cannot deregister ${stream}: no target in ferry.yaml takes it`,
      );
    return await withStateLock(
      state,
      async () => {
        const removals: Removal[] = [];
        const absent: string[] = [];
        // Found in every placement at once (read-only), in ferry.yaml's order.
        const places = session.targets.flatMap((t) => t.placements);
        const found: Array<{
          catalog: ImageCatalog;
          image: Awaited<ReturnType<ImageCatalog['find']>>;
        }> = [];
        await workerPool(places.entries(), FINDS_AT_ONCE, async ([i, p]) => {
          const catalog = session.catalog(p);
          found[i] = { catalog, image: await catalog.find(stream, revision, input.signal) };
        });
        places.forEach((p, i) => {
          const f = found[i];
          if (f?.image === undefined) absent.push(p.key);
          else
            removals.push({
              placement: p.key,
              catalog: f.catalog,
              imageId: f.image.imageId,
              snapshotIds: f.image.partIds,
              revision,
            });
        });
        if (removals.length === 0) return { stream, revision, runId: null, removed: [], absent };
        const { runId, removed } = await removeImages(
          state,
          { stream, revision, targets: session.targets.map((t) => t.name) },
          removals,
          {
            version: input.version,
            ...(input.signal === undefined ? {} : { signal: input.signal }),
          },
        );
        return { stream, revision, runId, removed, absent };
      },
      input.signal,
    );
  } finally {
    await session.close();
  }
}
