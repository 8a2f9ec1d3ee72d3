/**
 * Maps `items` through `fn` with at most `concurrency` calls in flight and
 * yields results in input order. Memory is bounded by `concurrency` results.
 * The first failure stops scheduling and is rethrown.
 */
export async function* orderedPool<T, R>(
  items: AsyncIterable<T> | Iterable<T>,
  concurrency: number,
  fn: (item: T) => Promise<R>,
): AsyncGenerator<R> {
  const window: Promise<R>[] = [];
  try {
    for await (const item of items) {
      const p = fn(item);
      // Keep a failure from surfacing as unhandled while it waits its turn.
      p.catch(() => {});
      window.push(p);
      if (window.length >= concurrency) yield await window.shift()!;
    }
    while (window.length > 0) yield await window.shift()!;
  } finally {
    // Let outstanding work settle before the caller moves on (no dangling I/O).
    await Promise.allSettled(window);
  }
}

/**
 * Runs `fn` over `items` with `concurrency` workers pulling from one shared
 * iterator. The first failure stops the pool: no worker takes another item,
 * the calls in flight settle, and that first failure is rethrown as it was
 * (a coded FerryError stays one). Failures of the calls that were in flight
 * meanwhile are dropped: they are mostly its echoes (one abort, one dead
 * endpoint, one full disk stops every worker, and each says so).
 */
export async function workerPool<T>(
  items: AsyncIterable<T> | Iterable<T>,
  concurrency: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  const iterator =
    Symbol.asyncIterator in items
      ? items[Symbol.asyncIterator]()
      : (items as Iterable<T>)[Symbol.iterator]();
  let failed = false;
  let failure: unknown;
  const worker = async (): Promise<void> => {
    while (!failed) {
      try {
        const next = await iterator.next();
        if (next.done === true || failed) return;
        await fn(next.value);
      } catch (error) {
        // The iterator's failure or a call's: the first one stops every worker.
        if (!failed) {
          failed = true;
          failure = error;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  if (failed) throw failure;
}
