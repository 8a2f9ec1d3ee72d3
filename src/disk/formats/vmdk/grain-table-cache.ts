/**
 * A least-recently-used cache of grain tables keyed by their sector, with a
 * byte budget. Concurrent lookups of one table share a single load; failed
 * loads are forgotten so a later read retries (and fails the same way).
 */
export class GrainTableCache {
  readonly #budget: number;
  readonly #entries = new Map<number, { promise: Promise<Uint32Array>; bytes: number }>();
  #bytes = 0;

  constructor(budget: number) {
    this.#budget = budget;
  }

  get(key: number, load: () => Promise<Uint32Array>): Promise<Uint32Array> {
    const hit = this.#entries.get(key);
    if (hit !== undefined) {
      this.#entries.delete(key);
      this.#entries.set(key, hit);
      return hit.promise;
    }
    const entry = { promise: load(), bytes: 0 };
    this.#entries.set(key, entry);
    entry.promise.then(
      (table) => {
        if (this.#entries.get(key) !== entry) return;
        entry.bytes = table.byteLength;
        this.#bytes += entry.bytes;
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
