/**
 * Steps over the journal. A step writes `started` before it acts and `done`
 * with its result after; a step the journal already has as done (a resumed
 * run) returns that result without acting again. Checkpoints let a started
 * step continue where it was.
 */

import { FerryError } from '../errors/index.js';
import type { ErrorRecord, Journal } from './journal.js';
import { type RunState, stepKey } from './run-state.js';
import type { Checkpoint } from './types.js';

/** A step's result: plain JSON, kept in the journal. */
export type StepResult = Readonly<Record<string, unknown>>;

export function errorRecord(error: unknown): ErrorRecord {
  if (error instanceof FerryError) return { code: error.code, message: error.message };
  const e = error as { name?: string; message?: string };
  return { code: 'FERRY_INTERNAL', message: `${e.name ?? 'Error'}: ${e.message ?? String(error)}` };
}

/** What this process knows of the run: results and checkpoints, earlier attempts' and its own. */
interface Known {
  readonly results: Map<string, StepResult>;
  readonly checkpoints: Map<string, unknown>;
}

export class Steps {
  readonly journal: Journal;
  /** The run as it was when this process took it over (empty for a new run). */
  readonly previous: RunState | undefined;
  readonly placement: string | null;
  readonly #known: Known;

  constructor(
    journal: Journal,
    previous: RunState | undefined,
    placement: string | null,
    known?: Known,
  ) {
    this.journal = journal;
    this.previous = previous;
    this.placement = placement;
    if (known === undefined) {
      const results = new Map<string, StepResult>();
      for (const [key, s] of previous?.steps ?? [])
        if (s.state === 'done' || s.state === 'skipped') results.set(key, s.detail);
      known = { results, checkpoints: new Map(previous?.checkpoints ?? []) };
    }
    this.#known = known;
  }

  /** The steps of one placement (or of the run, with null). */
  for(placement: string | null): Steps {
    return new Steps(this.journal, this.previous, placement, this.#known);
  }

  /** What this run (an earlier attempt, or this one) recorded for the step as done, if it did. */
  done(step: string): StepResult | undefined {
    return this.#known.results.get(stepKey(this.placement, step));
  }

  /** Was this step started (and not finished) by an earlier attempt? */
  interrupted(step: string): boolean {
    const s = this.previous?.steps.get(stepKey(this.placement, step));
    return s?.state === 'started';
  }

  checkpoint<T>(step: string): Checkpoint<T> {
    const placement = this.placement ?? '';
    const key = stepKey(this.placement, step);
    return {
      load: async () => this.#known.checkpoints.get(key) as T | undefined,
      save: async (value: T) => {
        this.#known.checkpoints.set(key, value);
        await this.journal.append({ type: 'checkpoint', placement, step, value });
      },
    };
  }

  /** Runs `fn` as step `step`, unless an earlier attempt finished it. */
  async run<R extends StepResult>(step: string, fn: () => Promise<R>): Promise<R> {
    const earlier = this.done(step);
    if (earlier !== undefined) return earlier as R;
    await this.journal.append({ type: 'step', placement: this.placement, step, state: 'started' });
    let result: R;
    try {
      result = await fn();
    } catch (error) {
      await this.journal
        .append({
          type: 'step',
          placement: this.placement,
          step,
          state: 'failed',
          error: errorRecord(error),
        })
        .catch(() => {});
      throw error;
    }
    await this.journal.append({
      type: 'step',
      placement: this.placement,
      step,
      state: 'done',
      detail: result,
    });
    this.#known.results.set(stepKey(this.placement, step), result);
    return result;
  }

  /** Records that a step was not needed (what it would have made exists already). */
  async skip(step: string, detail: StepResult): Promise<void> {
    if (this.done(step) !== undefined) return;
    await this.journal.append({
      type: 'step',
      placement: this.placement,
      step,
      state: 'skipped',
      detail,
    });
    this.#known.results.set(stepKey(this.placement, step), detail);
  }
}
