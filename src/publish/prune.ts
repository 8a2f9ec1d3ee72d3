/**
 * `ferry prune`: retention across targets. For every target with
 * `retention: {keep: N}`, in each of its placements and for each stream it
 * takes, the images ferry tagged with the stream are listed newest first
 * (CreationDate); the newest N stay and the rest are deregistered, their
 * snapshots deleted after them, journaled as deregister runs (one per
 * revision) under the state lock. An image an unfinished run made or is
 * making (its revision, or its image id) is never pruned: the next ferry
 * publish resumes that run. --dry-run lists what would go.
 */

import type { FerryConfig } from '../config/index.js';
import { FerryError } from '../errors/index.js';
import { type Removal, type RemovedImage, removeImages } from './deregister.js';
import { runHistory } from './history.js';
import { unfinishedRuns } from './publish.js';
import { statePaths, withStateLock } from './state-paths.js';
import { openTargets } from './target-session.js';

export interface PruneInput {
  readonly targets?: readonly string[];
  readonly dryRun?: boolean;
  readonly version: string;
  readonly signal?: AbortSignal;
}

export interface PruneCandidate {
  readonly target: string;
  readonly placement: string;
  readonly stream: string;
  readonly revision: string | null;
  readonly imageId: string;
  readonly snapshotIds: readonly string[];
  readonly created: string | null;
}

export interface PruneResult {
  readonly dryRun: boolean;
  /** Images kept by retention (the newest N per stream and placement). */
  readonly kept: readonly PruneCandidate[];
  /** Images beyond retention left alone: an unfinished run holds them. */
  readonly skipped: readonly PruneCandidate[];
  /** Images beyond retention: removed, or with --dry-run what would be. */
  readonly pruned: readonly PruneCandidate[];
  readonly removed: readonly RemovedImage[];
  /** The deregister runs written. */
  readonly runIds: readonly string[];
  /** Targets left out: no retention in ferry.yaml. */
  readonly unlimited: readonly string[];
}

export async function prune(config: FerryConfig, input: PruneInput): Promise<PruneResult> {
  const state = statePaths(config.state);
  const dryRun = input.dryRun === true;
  const session = await openTargets(
    config,
    input.targets === undefined ? {} : { only: input.targets },
  );
  try {
    const work = async (): Promise<PruneResult> => {
      const held = await unfinishedRuns(state);
      const heldRevisions = new Set(
        held.map((r) => `${r.request.stream}\u0000${r.request.revision}`),
      );
      const heldImages = new Set(
        held.flatMap((r) =>
          runHistory(r).placements.flatMap((p) => (p.imageId === null ? [] : [p.imageId])),
        ),
      );
      const kept: PruneCandidate[] = [];
      const skipped: PruneCandidate[] = [];
      const pruned: PruneCandidate[] = [];
      const removals: Array<Removal & { stream: string }> = [];
      const unlimited: string[] = [];
      for (const target of session.targets) {
        const keep = target.retention?.keep;
        if (keep === undefined) {
          unlimited.push(target.name);
          continue;
        }
        const declared = config.targets.find((t) => t.name === target.name)?.streams ?? [];
        const streams = declared.length > 0 ? declared : config.streams.map((s) => s.name);
        for (const p of target.placements)
          for (const stream of streams) {
            input.signal?.throwIfAborted();
            const catalog = session.catalog(p);
            const images = await catalog.list(stream, input.signal);
            for (const [i, image] of images.entries()) {
              const revision = image.revision;
              const c: PruneCandidate = {
                target: target.name,
                placement: p.key,
                stream,
                revision,
                imageId: image.imageId,
                snapshotIds: image.partIds,
                created: image.created,
              };
              if (i < keep) kept.push(c);
              else if (
                heldImages.has(image.imageId) ||
                heldRevisions.has(`${stream}\u0000${revision}`)
              )
                skipped.push(c);
              else {
                pruned.push(c);
                removals.push({
                  placement: p.key,
                  catalog,
                  imageId: image.imageId,
                  snapshotIds: image.partIds,
                  revision,
                  stream,
                });
              }
            }
          }
      }
      const removed: RemovedImage[] = [];
      const runIds: string[] = [];
      if (!dryRun) {
        // One run per stream revision: a run holds one image per placement.
        // (Two images of one revision in a placement go in two runs.)
        const groups: Array<typeof removals> = [];
        for (const r of removals) {
          const group = groups.find(
            (g) =>
              g[0]!.stream === r.stream &&
              r.revision !== null &&
              g[0]!.revision === r.revision &&
              !g.some((x) => x.placement === r.placement),
          );
          if (group === undefined) groups.push([r]);
          else group.push(r);
        }
        for (const group of groups) {
          const first = group[0]!;
          const targets = [...new Set(group.map((g) => g.placement.split('/')[0]!))];
          const r = await removeImages(
            state,
            { stream: first.stream, revision: first.revision, targets },
            group,
            {
              version: input.version,
              ...(input.signal === undefined ? {} : { signal: input.signal }),
            },
          );
          runIds.push(r.runId);
          removed.push(...r.removed);
        }
      }
      return { dryRun, kept, skipped, pruned, removed, runIds, unlimited };
    };
    if (session.targets.length === 0)
      throw new FerryError('FERRY_USAGE', 'Cannot prune: ferry.yaml has no targets');
    return dryRun ? await work() : await withStateLock(state, work, input.signal);
  } finally {
    await session.close();
  }
}
