import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { FerryError } from '../../src/errors/index.js';
import { orderedPool, workerPool } from '../../src/util/ordered-pool.js';

describe('workerPool', () => {
  it('runs every item with at most `concurrency` calls in flight', async () => {
    let inFlight = 0;
    let peak = 0;
    const seen: number[] = [];
    await workerPool(
      Array.from({ length: 40 }, (_, i) => i),
      4,
      async (i) => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        await sleep(1 + (i % 3));
        seen.push(i);
        inFlight--;
      },
    );
    assert.equal(peak, 4);
    assert.deepEqual(
      [...seen].sort((a, b) => a - b),
      Array.from({ length: 40 }, (_, i) => i),
    );
  });

  it('rethrows the first failure itself, coded, when several calls fail', async () => {
    const first = new FerryError('FERRY_AWS_REQUEST', 'Cannot put block 0: reset');
    const started: number[] = [];
    const error = await workerPool([0, 1, 2, 3, 4, 5, 6, 7], 4, async (i) => {
      started.push(i);
      // Item 0 fails first; the three in flight beside it fail after it.
      if (i === 0) throw first;
      await sleep(5);
      throw new FerryError('FERRY_ABORTED', `Cannot put block ${i}: aborted`);
    }).then(
      () => null,
      (e: unknown) => e,
    );
    assert.equal(error, first);
    assert.ok(!(error instanceof AggregateError));
    // No worker took an item after the first failure.
    assert.deepEqual(
      [...started].sort((a, b) => a - b),
      [0, 1, 2, 3],
    );
  });

  it('waits for the calls in flight before it throws', async () => {
    let settled = 0;
    await assert.rejects(
      workerPool([0, 1, 2], 3, async (i) => {
        if (i === 0) throw new Error('boom');
        await sleep(10);
        settled++;
      }),
      /boom/,
    );
    assert.equal(settled, 2);
  });

  it('stops on a failing iterator and rethrows its error', async () => {
    async function* items(): AsyncGenerator<number> {
      yield 1;
      throw new FerryError('FERRY_IO', 'Cannot read the block map: EIO');
    }
    const done: number[] = [];
    await assert.rejects(
      workerPool(items(), 2, async (i) => {
        done.push(i);
      }),
      (e: unknown) => e instanceof FerryError && e.code === 'FERRY_IO',
    );
    assert.deepEqual(done, [1]);
  });
});

describe('orderedPool', () => {
  it('yields results in input order whatever order they finish in', async () => {
    const out: number[] = [];
    for await (const r of orderedPool([30, 1, 20, 2, 10], 3, async (ms) => {
      await sleep(ms);
      return ms;
    })) {
      out.push(r);
    }
    assert.deepEqual(out, [30, 1, 20, 2, 10]);
  });

  it('rethrows the first failure in input order', async () => {
    const gen = orderedPool([0, 1, 2], 3, async (i) => {
      if (i === 1) throw new Error(`item ${i}`);
      return i;
    });
    const out: number[] = [];
    await assert.rejects(async () => {
      for await (const r of gen) out.push(r);
    }, /item 1/);
    assert.deepEqual(out, [0]);
  });
});
