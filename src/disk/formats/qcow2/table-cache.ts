/**
 * A least-recently-used cache of decoded metadata tables with a byte budget.
 * Concurrent lookups of the same key share one load; failed loads are not kept.
 */
export class TableCache<T extends { readonly bytes: number }> {
  readonly #budget: number;
  readonly #entries = new Map<number, { promise: Promise<T>; bytes: number }>();
  #bytes = 0;

  constructor(budget: number) {
    this.#budget = budget;
  }

  get(key: number, load: () => Promise<T>): Promise<T> {
    const hit = this.#entries.get(key);
    if (hit !== undefined) {
      this.#entries.delete(key);
      this.#entries.set(key, hit);
      return hit.promise;
    }
    const entry = { promise: load(), bytes: 0 };
    this.#entries.set(key, entry);
    entry.promise.then(
      (value) => {
        if (this.#entries.get(key) !== entry) return;
        entry.bytes = value.bytes;
        this.#bytes += value.bytes;
        this.#evict(key);
      },
      () => {
        if (this.#entries.get(key) === entry) this.#entries.delete(key);
      },
    );
    return entry.promise;
  }

  #evict(keep: number): void {
    for (const [k, e] of this.#entries) {
      if (this.#bytes <= this.#budget) return;
      if (k === keep || e.bytes === 0) continue;
      this.#entries.delete(k);
      this.#bytes -= e.bytes;
    }
  }

  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
  }
}
