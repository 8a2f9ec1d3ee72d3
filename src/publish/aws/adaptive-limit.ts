/**
 * A concurrency limit that halves when the service throttles and grows back
 * by one after `limit` successes in a row (additive increase,
 * multiplicative decrease), between 1 and `max`. Workers take a slot
 * before each request and give it back after.
 */
export class AdaptiveLimit {
  readonly max: number;
  #limit: number;
  #active = 0;
  #streak = 0;
  #epoch = 0;
  readonly #waiting: Array<() => void> = [];

  constructor(max: number) {
    this.max = Math.max(1, Math.floor(max));
    this.#limit = this.max;
  }

  get limit(): number {
    return this.#limit;
  }

  /**
   * Takes a slot; returns the epoch to hand to throttled(), so that the
   * requests in flight when the limit fell do not make it fall again.
   */
  async acquire(signal?: AbortSignal): Promise<number> {
    while (this.#active >= this.#limit) {
      signal?.throwIfAborted();
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          signal?.removeEventListener('abort', wake);
          resolve();
        };
        this.#waiting.push(wake);
        signal?.addEventListener('abort', wake, { once: true });
      });
    }
    this.#active++;
    return this.#epoch;
  }

  release(): void {
    this.#active--;
    this.#wake();
  }

  /** A request went through: after `limit` in a row the limit grows by one. */
  succeeded(): void {
    if (this.#limit >= this.max) return;
    if (++this.#streak >= this.#limit) {
      this.#streak = 0;
      this.#limit++;
      this.#wake();
    }
  }

  /** The service throttled a request taken at `epoch`: halve the limit once per epoch (returns the new one). */
  throttled(epoch: number): number {
    this.#streak = 0;
    if (epoch !== this.#epoch) return this.#limit;
    this.#epoch++;
    this.#limit = Math.max(1, Math.floor(this.#limit / 2));
    return this.#limit;
  }

  #wake(): void {
    while (this.#waiting.length > 0 && this.#active < this.#limit) this.#waiting.shift()!();
  }
}
