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
 * iterator. All failures are collected; one is rethrown, several as AggregateError.
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
  const errors: unknown[] = [];
  const worker = async (): Promise<void> => {
    while (errors.length === 0) {
      const next = await iterator.next();
      if (next.done === true) return;
      try {
        await fn(next.value);
      } catch (error) {
        errors.push(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new AggregateError(errors, 'Several workers failed');
}

/**
 * Rethrows a workerPool failure as one error: the first, when several
 * workers failed (one abort or one dead endpoint stops them all, and each
 * says so). For callers that answer with a coded error rather than an
 * AggregateError.
 */
export function firstFailure(error: unknown): never {
  throw error instanceof AggregateError ? error.errors[0] : error;
}
