/**
 * What the journals say happened: every run with each placement's timed
 * step transitions (`ferry history`), the run going on now (`ferry
 * status`), and which revision of which stream is live where (`ferry
 * images ls`). Deregistrations are runs too (their steps are named
 * `deregister`), so the matrix drops what was taken down.
 */

import type { RunOutcome, RunState, StepRecord } from './run-state.js';
import { loadRuns } from './run-state.js';
import type { StatePaths } from './state-paths.js';

export interface StepHistory {
  readonly step: string;
  readonly state: string;
  readonly started: string | null;
  readonly ended: string | null;
  readonly seconds: number | null;
  readonly detail: Readonly<Record<string, unknown>>;
  readonly error: { readonly code: string; readonly message: string } | null;
}

export interface PlacementHistory {
  readonly placement: string;
  readonly state: 'done' | 'failed' | 'running' | 'interrupted' | 'removed';
  readonly imageId: string | null;
  readonly snapshotIds: readonly string[];
  readonly steps: readonly StepHistory[];
}

export interface RunHistory {
  readonly runId: string;
  readonly kind: 'publish' | 'deregister';
  readonly stream: string;
  readonly revision: string | null;
  readonly image: string | null;
  readonly version: string;
  readonly started: string;
  readonly ended: string | null;
  readonly seconds: number | null;
  readonly outcome: RunOutcome;
  readonly resumed: readonly string[];
  readonly error: { readonly code: string; readonly message: string } | null;
  /** The run's own steps (render, inspect). */
  readonly steps: readonly StepHistory[];
  readonly placements: readonly PlacementHistory[];
}

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

function stepHistory(s: StepRecord): StepHistory {
  return {
    step: s.step,
    state: s.state,
    started: iso(s.started),
    ended: iso(s.ended),
    seconds: s.started !== null && s.ended !== null ? (s.ended - s.started) / 1000 : null,
    detail: s.detail,
    error: s.error,
  };
}

function placementState(
  steps: StepRecord[],
  outcome: RunOutcome,
  live: boolean,
): PlacementHistory['state'] {
  if (steps.some((s) => s.step === 'deregister' && s.state === 'done')) return 'removed';
  if (steps.some((s) => s.state === 'failed')) return 'failed';
  if (steps.some((s) => s.state === 'started'))
    return outcome === 'unfinished' && live ? 'running' : 'interrupted';
  return outcome === 'unfinished' && live ? 'running' : 'done';
}

/** A run as history. `live`: is a publish holding the lock now (its unfinished run is running, not interrupted)? */
export function runHistory(run: RunState, live = false): RunHistory {
  const byPlacement = new Map<string, StepRecord[]>();
  const own: StepRecord[] = [];
  for (const s of run.steps.values()) {
    if (s.placement === null) own.push(s);
    else byPlacement.set(s.placement, [...(byPlacement.get(s.placement) ?? []), s]);
  }
  const placements: PlacementHistory[] = [...byPlacement].map(([placement, steps]) => {
    const details = Object.assign({}, ...steps.map((s) => s.detail)) as Record<string, unknown>;
    const snaps = steps.flatMap((s) => {
      const id = s.detail.snapshotId;
      const ids = s.detail.snapshotIds;
      return [
        ...(typeof id === 'string' ? [id] : []),
        ...(Array.isArray(ids) ? ids.filter((x) => typeof x === 'string') : []),
      ];
    });
    return {
      placement,
      state: placementState(steps, run.outcome, live),
      imageId: typeof details.imageId === 'string' ? details.imageId : null,
      snapshotIds: [...new Set(snaps)],
      steps: steps.map(stepHistory),
    };
  });
  const kind =
    run.request.kind === 'deregister' ||
    [...run.steps.values()].some((s) => s.step === 'deregister')
      ? 'deregister'
      : 'publish';
  return {
    runId: run.id,
    kind,
    stream: run.request.stream,
    revision: run.request.revision,
    image: run.request.image,
    version: run.version,
    started: new Date(run.started).toISOString(),
    ended: iso(run.ended),
    seconds: run.ended === null ? null : (run.ended - run.started) / 1000,
    outcome: run.outcome,
    resumed: run.resumed.map((t) => new Date(t).toISOString()),
    error: run.error,
    steps: own.map(stepHistory),
    placements,
  };
}

export async function history(
  state: StatePaths,
  filter: { stream?: string } = {},
): Promise<RunHistory[]> {
  const runs = await loadRuns(state.runs);
  return runs
    .filter((r) => filter.stream === undefined || r.request.stream === filter.stream)
    .map((r) => runHistory(r));
}

export interface LiveImage {
  readonly stream: string;
  readonly placement: string;
  readonly revision: string | null;
  readonly imageId: string;
  readonly snapshotIds: readonly string[];
  readonly published: string;
  readonly runId: string;
}

/**
 * Which image is live per stream and placement: the newest published one
 * not deregistered since, with every older one still standing after it.
 */
export async function liveImages(state: StatePaths): Promise<LiveImage[]> {
  const standing = new Map<string, LiveImage[]>();
  for (const run of await loadRuns(state.runs)) {
    const h = runHistory(run);
    for (const p of h.placements) {
      const key = `${h.stream}\u0000${p.placement}`;
      const list = standing.get(key) ?? [];
      if (h.kind === 'deregister') {
        const gone = new Set(p.state === 'removed' && p.imageId !== null ? [p.imageId] : []);
        standing.set(
          key,
          list.filter((i) => !gone.has(i.imageId)),
        );
      } else if (p.state === 'done' && p.imageId !== null) {
        standing.set(key, [
          ...list.filter((i) => i.imageId !== p.imageId),
          {
            stream: h.stream,
            placement: p.placement,
            revision:
              h.revision ??
              (run.steps.get('\u0000inspect')?.detail.contentHash as string | undefined) ??
              null,
            imageId: p.imageId,
            snapshotIds: p.snapshotIds,
            published: h.ended ?? h.started,
            runId: h.runId,
          },
        ]);
      }
    }
  }
  return [...standing.values()].flat();
}
