/**
 * A run as its journal tells it: what it was asked, each step's state with
 * its timestamps, the last checkpoint of each step, and how it ended (or
 * that it did not: a crash, or a run still going).
 */

import { join } from 'node:path';
import type { ErrorRecord, JournalRecord, RunRequest, StepState } from './journal.js';
import { listRuns, readJournal } from './journal.js';

export interface StepRecord {
  readonly step: string;
  readonly placement: string | null;
  state: StepState;
  started: number | null;
  ended: number | null;
  detail: Readonly<Record<string, unknown>>;
  error: ErrorRecord | null;
  /** Every transition, in order: [state, time]. */
  readonly transitions: Array<[StepState, number]>;
}

export type RunOutcome = 'done' | 'failed' | 'aborted' | 'unfinished';

export interface RunState {
  readonly id: string;
  readonly request: RunRequest;
  readonly version: string;
  readonly started: number;
  ended: number | null;
  outcome: RunOutcome;
  error: ErrorRecord | null;
  /** Times the run was resumed after a crash or an abort. */
  resumed: number[];
  /** Keyed `${placement ?? ''}\u0000${step}`, in first-seen order. */
  readonly steps: Map<string, StepRecord>;
  readonly checkpoints: Map<string, unknown>;
}

export const stepKey = (placement: string | null, step: string): string =>
  `${placement ?? ''}\u0000${step}`;

/** Folds a journal's records into a run (undefined for an empty journal). */
export function replay(id: string, records: readonly JournalRecord[]): RunState | undefined {
  const first = records[0];
  if (first === undefined || first.type !== 'run' || first.state !== 'started') return undefined;
  const run: RunState = {
    id,
    request: first.request,
    version: first.version,
    started: first.t,
    ended: null,
    outcome: 'unfinished',
    error: null,
    resumed: [],
    steps: new Map(),
    checkpoints: new Map(),
  };
  for (const r of records.slice(1)) {
    if (r.type === 'run') {
      if (r.state === 'resumed') {
        run.resumed.push(r.t);
        run.outcome = 'unfinished';
        run.ended = null;
        run.error = null;
      } else if (r.state !== 'started') {
        run.outcome = r.state;
        run.ended = r.t;
        run.error = r.error ?? null;
      }
    } else if (r.type === 'step') {
      const key = stepKey(r.placement, r.step);
      let s = run.steps.get(key);
      if (s === undefined) {
        s = {
          step: r.step,
          placement: r.placement,
          state: r.state,
          started: null,
          ended: null,
          detail: {},
          error: null,
          transitions: [],
        };
        run.steps.set(key, s);
      }
      s.state = r.state;
      s.transitions.push([r.state, r.t]);
      if (r.state === 'started') {
        s.started ??= r.t;
        s.ended = null;
        s.error = null;
      } else s.ended = r.t;
      if (r.detail !== undefined) s.detail = { ...s.detail, ...r.detail };
      if (r.error !== undefined) s.error = r.error;
    } else {
      run.checkpoints.set(stepKey(r.placement, r.step), r.value);
    }
  }
  return run;
}

/** Every run under `runsDir`, oldest first; unreadable journals are skipped. */
export async function loadRuns(runsDir: string): Promise<RunState[]> {
  const out: RunState[] = [];
  for (const id of await listRuns(runsDir)) {
    try {
      const run = replay(id, await readJournal(join(runsDir, `${id}.jsonl`)));
      if (run !== undefined) out.push(run);
    } catch {
      // A damaged journal is reported by `ferry history`, not fatal to others.
    }
  }
  return out;
}
