import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RetryErrorInfo } from '@smithy/types';
import { isFerryError } from '../../src/errors/index.js';
import { AdaptiveLimit, type LimitOutcome } from '../../src/publish/adaptive-limit.js';
import {
  backoffMs,
  DEFAULT_RETRY_POLICY,
  type RetryEvent,
  type RetryPolicy,
  retryKind,
  retryStrategyFor,
} from '../../src/publish/retry.js';

/** An error shaped as the SDK v3 throws them. */
function sdkError(name: string, status?: number, extra: Record<string, unknown> = {}): Error {
  const e = new Error(name) as Error & Record<string, unknown>;
  e.name = name;
  if (status !== undefined) e.$metadata = { httpStatusCode: status };
  Object.assign(e, extra);
  return e;
}

function info(error: unknown, retryAfterHint?: Date): RetryErrorInfo {
  return {
    error: error as NonNullable<RetryErrorInfo['error']>,
    errorType: 'TRANSIENT',
    ...(retryAfterHint === undefined ? {} : { retryAfterHint }),
  };
}

const POLICY: RetryPolicy = { maxAttempts: 4, baseMs: 100, capMs: 1000, throttleBaseMs: 300 };

describe('publish: retry policy', () => {
  it('classifies what is retried and what is not', () => {
    const connection = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    const cases: Array<[unknown, ReturnType<typeof retryKind>]> = [
      [sdkError('RequestThrottledException', 400), 'throttling'],
      [sdkError('ThrottlingException', 400), 'throttling'],
      [sdkError('SlowDown', 503), 'throttling'],
      [sdkError('RequestLimitExceeded', 503), 'throttling'],
      [sdkError('Whatever', 429), 'throttling'],
      [sdkError('InternalError', 500), 'server'],
      [sdkError('Unknown', 502), 'server'],
      [sdkError('ServiceUnavailable', 503), 'server'],
      [sdkError('Unknown', 504), 'server'],
      [sdkError('TimeoutError'), 'server'],
      [sdkError('InternalServerException', 500, { $retryable: {} }), 'server'],
      [sdkError('Modelled', 400, { $retryable: { throttling: true } }), 'throttling'],
      [connection, 'connection'],
      [Object.assign(new Error('x'), { code: 'EPIPE' }), 'connection'],
      [new Error('wrapped', { cause: connection }), 'connection'],
      [
        sdkError('AuthFailure', 401, {
          $metadata: { httpStatusCode: 401, clockSkewCorrected: true },
        }),
        'server',
      ],
      [sdkError('ValidationException', 400), null],
      [sdkError('ResourceNotFoundException', 404), null],
      [sdkError('ServiceQuotaExceededException', 402), null],
      [sdkError('AccessDeniedException', 403), null],
      [sdkError('Unknown', 501), null],
      [sdkError('AbortError'), null],
      [Object.assign(new Error('gone'), { name: 'AbortError', code: 'ECONNRESET' }), null],
      ['a string', null],
      [null, null],
    ];
    for (const [error, kind] of cases) assert.equal(retryKind(error), kind, String(error));
  });

  it('backs off with full jitter, capped, from a larger base after throttling', () => {
    const top = () => 0.999999;
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5].map((r) => backoffMs(POLICY, r, 'server', top)),
      [99, 199, 399, 799, 999, 999],
    );
    assert.deepEqual(
      [0, 1, 2].map((r) => backoffMs(POLICY, r, 'throttling', top)),
      [299, 599, 999],
    );
    assert.equal(
      backoffMs(POLICY, 3, 'connection', () => 0),
      0,
    );
    assert.equal(
      backoffMs(POLICY, 3, 'connection', () => 0.5),
      400,
    );
    assert.equal(
      backoffMs(POLICY, 1000, 'server', () => 0.5),
      500,
      'no overflow on huge retry counts',
    );
  });

  it('gives the SDK tokens with the delay, up to maxAttempts, and refuses what is not retryable', async () => {
    const events: RetryEvent[] = [];
    const s = retryStrategyFor(POLICY, { random: () => 0.5, onRetry: (e) => events.push(e) });
    let token = await s.acquireInitialRetryToken('');
    assert.equal(token.getRetryCount(), 0);
    assert.equal(token.getRetryDelay(), 0);
    const delays: number[] = [];
    for (let i = 0; i < 3; i++) {
      token = await s.refreshRetryTokenForRetry(token, info(sdkError('InternalError', 500)));
      delays.push(token.getRetryDelay());
    }
    assert.deepEqual(delays, [50, 100, 200]);
    assert.equal(token.getRetryCount(), 3);
    // A fourth attempt was the last: no fifth.
    await assert.rejects(s.refreshRetryTokenForRetry(token, info(sdkError('InternalError', 500))));
    assert.deepEqual(
      events.map((e) => [e.retry, e.kind, e.delayMs]),
      [
        [1, 'server', 50],
        [2, 'server', 100],
        [3, 'server', 200],
      ],
    );
    const fresh = await s.acquireInitialRetryToken('');
    await assert.rejects(
      s.refreshRetryTokenForRetry(fresh, info(sdkError('ValidationException', 400))),
    );
    s.recordSuccess(fresh);
  });

  it('honours Retry-After up to maxRetryAfterMs, on a fake clock', async () => {
    const now = 1_000_000;
    const s = retryStrategyFor(
      { ...POLICY, maxRetryAfterMs: 5000 },
      { random: () => 0, now: () => now },
    );
    const t0 = await s.acquireInitialRetryToken('');
    const slow = sdkError('SlowDown', 503);
    const t1 = await s.refreshRetryTokenForRetry(t0, info(slow, new Date(now + 2500)));
    assert.equal(t1.getRetryDelay(), 2500);
    const t2 = await s.refreshRetryTokenForRetry(t1, info(slow, new Date(now + 60_000)));
    assert.equal(t2.getRetryDelay(), 5000, 'capped');
    const t3 = await s.refreshRetryTokenForRetry(t2, info(slow, new Date(now - 10)));
    assert.equal(t3.getRetryDelay(), 0, 'a date in the past does not shorten below backoff');
  });

  it('refuses a policy that cannot work', () => {
    const bad: RetryPolicy[] = [
      { ...DEFAULT_RETRY_POLICY, maxAttempts: 0 },
      { ...DEFAULT_RETRY_POLICY, maxAttempts: 1.5 },
      { ...DEFAULT_RETRY_POLICY, baseMs: -1 },
      { ...DEFAULT_RETRY_POLICY, capMs: Number.NaN },
      { ...DEFAULT_RETRY_POLICY, baseMs: 5000, capMs: 10 },
    ];
    for (const p of bad)
      assert.throws(
        () => retryStrategyFor(p),
        (e: unknown) => isFerryError(e, 'FERRY_USAGE'),
      );
  });
});

describe('publish: adaptive limit (AIMD)', () => {
  it('halves on throttling down to 1, grows by one after N successes up to max', async () => {
    const changes: Array<[number, LimitOutcome]> = [];
    const l = new AdaptiveLimit({
      max: 8,
      increaseAfter: 3,
      onChange: (n, o) => changes.push([n, o]),
    });
    assert.equal(l.limit, 8);
    const once = async (outcome: LimitOutcome) => {
      await l.acquire();
      l.release(outcome);
    };
    for (const expected of [4, 2, 1, 1]) {
      await once('throttled');
      assert.equal(l.limit, expected);
    }
    await once('success');
    await once('success');
    assert.equal(l.limit, 1);
    await once('success');
    assert.equal(l.limit, 2);
    await once('failure');
    await once('success');
    await once('success');
    await once('throttled');
    assert.equal(l.limit, 1, 'a throttle resets the success run');
    for (let i = 0; i < 60; i++) await once('success');
    assert.equal(l.limit, 8, 'never above max');
    assert.deepEqual(changes.slice(0, 4), [
      [4, 'throttled'],
      [2, 'throttled'],
      [1, 'throttled'],
      [2, 'success'],
    ]);
  });

  it('holds at most limit permits; waiters run as permits come back, in order', async () => {
    const l = new AdaptiveLimit({ max: 2 });
    await l.acquire();
    await l.acquire();
    const order: number[] = [];
    const a = l.acquire().then(() => order.push(1));
    const b = l.acquire().then(() => order.push(2));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(order, []);
    assert.equal(l.waiting, 2);
    l.release('success');
    await a;
    assert.deepEqual(order, [1]);
    assert.equal(l.inFlight, 2);
    // A throttle halves to 1: releasing one of the two leaves no room for b.
    l.release('throttled');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(order, [1]);
    l.release('success');
    await b;
    assert.deepEqual(order, [1, 2]);
    assert.throws(
      () => {
        l.release('success');
        l.release('success');
      },
      (e: unknown) => isFerryError(e, 'FERRY_INTERNAL'),
    );
  });

  it('throttles of requests sent before the last decrease do not halve again', async () => {
    const l = new AdaptiveLimit({ max: 16 });
    const tickets = await Promise.all(Array.from({ length: 16 }, () => l.acquire()));
    for (const t of tickets.slice(0, 10)) l.release('throttled', t);
    assert.equal(l.limit, 8, 'one halving for one burst');
    const fresh = await l.acquire();
    l.release('throttled', fresh);
    assert.equal(l.limit, 4);
  });

  it('an aborted wait rejects with FERRY_ABORTED and gives up its place', async () => {
    const l = new AdaptiveLimit({ max: 1 });
    await l.acquire();
    const ac = new AbortController();
    const waiting = l.acquire(ac.signal);
    const next = l.acquire();
    ac.abort();
    await assert.rejects(waiting, (e: unknown) => isFerryError(e, 'FERRY_ABORTED'));
    l.release('success');
    await next;
    assert.equal(l.inFlight, 1);
    await assert.rejects(l.acquire(AbortSignal.abort()), (e: unknown) =>
      isFerryError(e, 'FERRY_ABORTED'),
    );
    assert.throws(
      () => new AdaptiveLimit({ max: 0 }),
      (e: unknown) => isFerryError(e, 'FERRY_USAGE'),
    );
    assert.throws(
      () => new AdaptiveLimit({ max: 4, initial: 5 }),
      (e: unknown) => isFerryError(e, 'FERRY_USAGE'),
    );
  });
});
