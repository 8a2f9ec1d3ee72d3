/**
 * A concurrency limit that follows the service's throttling (AIMD): a
 * throttled request halves it, `increaseAfter` successes in a row raise it
 * by one, always between 1 and `max`. Worker pools take a permit before each
 * request and give it back with the outcome.
 *
 * Requests already in flight when the limit was halved were sent under the
 * old limit: their throttles say nothing new. `acquire` returns a ticket;
 * a throttle released with a ticket older than the last decrease does not
 * halve again (without tickets, each throttle halves).
 */
import { FerryError } from '../errors/index.js';

export type LimitOutcome = 'success' | 'throttled' | 'failure';

export interface AdaptiveLimitOptions {
  /** The most requests at once (and where the limit starts unless `initial`). */
  readonly max: number;
  readonly initial?: number;
  /** Successes in a row that raise the limit by one (default 10). */
  readonly increaseAfter?: number;
  /** Told each time the limit changes. */
  readonly onChange?: (limit: number, outcome: LimitOutcome) => void;
}

interface Waiter {
  readonly resolve: (ticket: number) => void;
  readonly reject: (error: unknown) => void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
}

function aborted(signal: AbortSignal): FerryError {
  return new FerryError('FERRY_ABORTED', 'Cannot wait for a request slot: aborted', {
    cause: signal.reason,
  });
}

export class AdaptiveLimit {
  readonly max: number;
  private readonly increaseAfter: number;
  private readonly onChange: ((limit: number, outcome: LimitOutcome) => void) | undefined;
  private current: number;
  private active = 0;
  private successes = 0;
  /** Bumped at each decrease; tickets carry the epoch they were taken in. */
  private epoch = 0;
  private readonly waiters: Waiter[] = [];

  constructor(options: AdaptiveLimitOptions) {
    const { max } = options;
    const initial = options.initial ?? max;
    const increaseAfter = options.increaseAfter ?? 10;
    if (!Number.isInteger(max) || max < 1 || max > 10_000)
      throw new FerryError('FERRY_USAGE', `Cannot make a limit: max ${max} is not 1 to 10000`);
    if (!Number.isInteger(initial) || initial < 1 || initial > max)
      throw new FerryError(
        'FERRY_USAGE',
        `Cannot make a limit: initial ${initial} is not 1 to ${max}`,
      );
    if (!Number.isInteger(increaseAfter) || increaseAfter < 1)
      throw new FerryError(
        'FERRY_USAGE',
        `Cannot make a limit: increaseAfter ${increaseAfter} is not a positive whole number`,
      );
    this.max = max;
    this.current = initial;
    this.increaseAfter = increaseAfter;
    this.onChange = options.onChange;
  }

  /** Requests allowed at once now. */
  get limit(): number {
    return this.current;
  }

  /** Permits held now. */
  get inFlight(): number {
    return this.active;
  }

  /** Waiting for a permit. */
  get waiting(): number {
    return this.waiters.length;
  }

  /** Resolves with a ticket once fewer than `limit` permits are held; FERRY_ABORTED on abort. */
  acquire(signal?: AbortSignal): Promise<number> {
    if (signal?.aborted === true) return Promise.reject(aborted(signal));
    if (this.active < this.current && this.waiters.length === 0) {
      this.active += 1;
      return Promise.resolve(this.epoch);
    }
    return new Promise<number>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const i = this.waiters.indexOf(waiter);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(aborted(signal!));
        },
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** Gives a permit back with what the request met. */
  release(outcome: LimitOutcome, ticket?: number): void {
    if (this.active === 0)
      throw new FerryError('FERRY_INTERNAL', 'Cannot release a request slot: none is held');
    this.active -= 1;
    if (outcome === 'throttled') {
      this.successes = 0;
      if (ticket === undefined || ticket >= this.epoch) {
        this.epoch += 1;
        const next = Math.max(1, Math.floor(this.current / 2));
        if (next !== this.current) {
          this.current = next;
          this.onChange?.(next, outcome);
        }
      }
    } else if (outcome === 'success') {
      this.successes += 1;
      if (this.successes >= this.increaseAfter) {
        this.successes = 0;
        if (this.current < this.max) {
          this.current += 1;
          this.onChange?.(this.current, outcome);
        }
      }
    }
    this.wake();
  }

  private wake(): void {
    while (this.active < this.current) {
      const w = this.waiters.shift();
      if (w === undefined) return;
      w.signal?.removeEventListener('abort', w.onAbort);
      this.active += 1;
      w.resolve(this.epoch);
    }
  }
}
