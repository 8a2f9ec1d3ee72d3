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

export class Steps {
  readonly journal: Journal;
  /** The run as it was when this process took it over (empty for a new run). */
  readonly previous: RunState | undefined;
  readonly placement: string | null;

  constructor(journal: Journal, previous: RunState | undefined, placement: string | null) {
    this.journal = journal;
    this.previous = previous;
    this.placement = placement;
  }

  /** The steps of one placement (or of the run, with null). */
  for(placement: string | null): Steps {
    return new Steps(this.journal, this.previous, placement);
  }

  /** What an earlier attempt of this run recorded for the step as done, if it did. */
  done(step: string): StepResult | undefined {
    const s = this.previous?.steps.get(stepKey(this.placement, step));
    return s?.state === 'done' || s?.state === 'skipped' ? s.detail : undefined;
  }

  /** Was this step started (and not finished) by an earlier attempt? */
  interrupted(step: string): boolean {
    const s = this.previous?.steps.get(stepKey(this.placement, step));
    return s?.state === 'started';
  }

  checkpoint<T>(step: string): Checkpoint<T> {
    const placement = this.placement ?? '';
    let last = this.previous?.checkpoints.get(stepKey(this.placement, step)) as T | undefined;
    return {
      load: async () => last,
      save: async (value: T) => {
        last = value;
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
  }
}
