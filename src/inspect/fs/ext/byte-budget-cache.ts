/**
 * A least-recently-used cache bounded by the bytes its values hold, for
 * filesystem metadata (group descriptor blocks, extent tree nodes, indirect
 * blocks, inodes). Guest file data is never cached.
 */
export class ByteBudgetCache<K, V> {
  readonly #map = new Map<K, { value: V; bytes: number }>();
  readonly #budget: number;
  #bytes = 0;

  constructor(budgetBytes: number) {
    this.#budget = budgetBytes;
  }

  get(key: K): V | undefined {
    const hit = this.#map.get(key);
    if (hit === undefined) return undefined;
    // Move to the most-recent end.
    this.#map.delete(key);
    this.#map.set(key, hit);
    return hit.value;
  }

  set(key: K, value: V, bytes: number): void {
    if (bytes > this.#budget) return;
    const old = this.#map.get(key);
    if (old !== undefined) {
      this.#bytes -= old.bytes;
      this.#map.delete(key);
    }
    while (this.#bytes + bytes > this.#budget) {
      const oldest = this.#map.keys().next();
      if (oldest.done) break;
      const entry = this.#map.get(oldest.value)!;
      this.#bytes -= entry.bytes;
      this.#map.delete(oldest.value);
    }
    this.#map.set(key, { value, bytes });
    this.#bytes += bytes;
  }

  get bytes(): number {
    return this.#bytes;
  }
}
