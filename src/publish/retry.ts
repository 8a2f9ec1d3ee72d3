/**
 * Retries as data: a RetryPolicy is a plain object, and retryStrategyFor
 * turns it into what the SDK v3 clients take as `retryStrategy` (smithy's
 * RetryStrategyV2: the client's retry middleware asks it for a token before
 * the first attempt and after each failure, and sleeps the token's delay,
 * abortably, before the next attempt).
 *
 * What is retried: throttling (429, and the codes in THROTTLING_CODES such as
 * RequestThrottledException, ThrottlingException, SlowDown), server errors
 * 500/502/503/504 and the codes in SERVER_CODES, connection failures
 * (ECONNRESET, EPIPE, ETIMEDOUT, ECONNREFUSED, the SDK's TimeoutError), an
 * error the service model marks retryable, and a request refused for clock
 * skew once the SDK corrected its clock. Nothing else: a 4xx is the caller's
 * to handle, and an abort is never retried.
 *
 * Why repeating a request is safe for what ferry sends:
 * - EBS PutSnapshotBlock writes one block index with its checksum: writing
 *   the same bytes to the same index again leaves the same snapshot.
 * - StartSnapshot carries a ClientToken (derived from stream, revision,
 *   content hash, placement, attempt): a repeat returns the same snapshot.
 * - CompleteSnapshot of a snapshot already completing or completed answers
 *   its status; ferry reads the status rather than the answer.
 * - EC2 CopyImage and RunInstances carry ClientTokens (the SDK fills them);
 *   RegisterImage is retried and a lost answer is found again by image name
 *   (InvalidAMIName.Duplicate names the image); CreateTags, ModifyImage and
 *   snapshot attributes, Describe* and deletes are idempotent.
 * - S3 PutObject and UploadPart overwrite the same key or part number.
 *
 * The SDK itself never retries a request whose body is a stream (it cannot
 * replay it): pass block data and parts as Buffers when they must be retried.
 * Nor can it retry a response body that breaks while the caller reads it
 * (GetObject, GetSnapshotBlock: the middleware has returned by then); such
 * a read fails with ECONNRESET, which retryKind calls 'connection', and the
 * caller repeats the read.
 */
import type { RetryErrorInfo, RetryStrategyV2, RetryToken } from '@smithy/types';
import { FerryError } from '../errors/index.js';

export interface RetryPolicy {
  /** Attempts in all, the first included (1: never retry). */
  readonly maxAttempts: number;
  /** The backoff ceiling of the first retry; it doubles with each retry. */
  readonly baseMs: number;
  /** The backoff ceiling never exceeds this. */
  readonly capMs: number;
  /** The first ceiling after a throttling error (default: baseMs). */
  readonly throttleBaseMs?: number;
  /** A server's Retry-After is honoured up to this long (default: capMs). */
  readonly maxRetryAfterMs?: number;
}

/** EBS direct, EC2 and S3 calls of a publish: about 40 s of patience in all. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 8,
  baseMs: 100,
  capMs: 20_000,
  throttleBaseMs: 500,
  maxRetryAfterMs: 30_000,
};

export const THROTTLING_CODES: ReadonlySet<string> = new Set([
  'RequestThrottledException',
  'ThrottlingException',
  'Throttling',
  'ThrottledException',
  'RequestThrottled',
  'RequestLimitExceeded',
  'EC2ThrottledException',
  'SlowDown',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'BandwidthLimitExceeded',
  'PriorRequestNotComplete',
]);

export const SERVER_CODES: ReadonlySet<string> = new Set([
  'InternalError',
  'InternalFailure',
  'InternalServerError',
  'InternalServerException',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'Unavailable',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
]);

export const RETRY_STATUS: ReadonlySet<number> = new Set([500, 502, 503, 504]);

export const CONNECTION_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

export type RetryKind = 'throttling' | 'server' | 'connection';

interface ErrorShape {
  readonly name?: string;
  readonly code?: string;
  readonly Code?: string;
  readonly message?: string;
  readonly cause?: unknown;
  readonly $retryable?: { readonly throttling?: boolean };
  readonly $metadata?: { readonly httpStatusCode?: number; readonly clockSkewCorrected?: boolean };
}

/** Why `error` may be retried, or null when it must not be. */
export function retryKind(error: unknown, depth = 0): RetryKind | null {
  if (typeof error !== 'object' || error === null) return null;
  const e = error as ErrorShape;
  if (e.name === 'AbortError') return null;
  const name = e.name ?? '';
  const status = e.$metadata?.httpStatusCode;
  if (status === 429 || THROTTLING_CODES.has(name) || THROTTLING_CODES.has(e.Code ?? ''))
    return 'throttling';
  if (e.$retryable !== undefined) return e.$retryable.throttling === true ? 'throttling' : 'server';
  if (CONNECTION_CODES.has(e.code ?? '')) return 'connection';
  if (SERVER_CODES.has(name) || (status !== undefined && RETRY_STATUS.has(status))) return 'server';
  if (e.$metadata?.clockSkewCorrected === true) return 'server';
  if (e.cause !== undefined && depth < 5) return retryKind(e.cause, depth + 1);
  return null;
}

/** Full jitter: a uniform delay in [0, min(cap, base * 2^retry)). */
export function backoffMs(
  policy: RetryPolicy,
  retry: number,
  kind: RetryKind,
  random: () => number,
): number {
  const base = kind === 'throttling' ? (policy.throttleBaseMs ?? policy.baseMs) : policy.baseMs;
  const ceiling = Math.min(policy.capMs, base * 2 ** Math.min(retry, 30));
  return Math.floor(random() * ceiling);
}

export interface RetryEvent {
  /** 1 for the first retry. */
  readonly retry: number;
  readonly kind: RetryKind;
  readonly delayMs: number;
  readonly error: unknown;
}

export interface RetryStrategyOptions {
  /** [0, 1); default Math.random. */
  readonly random?: () => number;
  readonly now?: () => number;
  /** Told before each retry (for events and logs; it must not throw). */
  readonly onRetry?: (event: RetryEvent) => void;
}

class Token implements RetryToken {
  constructor(
    private readonly count: number,
    private readonly delay: number,
  ) {}
  getRetryCount(): number {
    return this.count;
  }
  getRetryDelay(): number {
    return this.delay;
  }
}

/** Refuses a policy that cannot work (FERRY_USAGE): attempts 1 to 100, delays finite and ordered. */
export function checkRetryPolicy(policy: RetryPolicy): void {
  const ms = (v: number | undefined) => v === undefined || (Number.isFinite(v) && v >= 0);
  const reason =
    !Number.isInteger(policy.maxAttempts) || policy.maxAttempts < 1 || policy.maxAttempts > 100
      ? `maxAttempts ${policy.maxAttempts} is not a whole number from 1 to 100`
      : !ms(policy.baseMs) ||
          !ms(policy.capMs) ||
          !ms(policy.throttleBaseMs) ||
          !ms(policy.maxRetryAfterMs)
        ? 'a delay is negative or not a number'
        : policy.baseMs > policy.capMs
          ? `baseMs ${policy.baseMs} is over capMs ${policy.capMs}`
          : null;
  if (reason !== null)
    throw new FerryError('FERRY_USAGE', `Cannot use the retry policy: ${reason}`, {
      details: { maxAttempts: policy.maxAttempts, baseMs: policy.baseMs, capMs: policy.capMs },
    });
}

/** The policy as an SDK v3 `retryStrategy`; the client's middleware sleeps the delays (abortably). */
export function retryStrategyFor(
  policy: RetryPolicy,
  options: RetryStrategyOptions = {},
): RetryStrategyV2 {
  checkRetryPolicy(policy);
  const random = options.random ?? Math.random;
  const now = options.now ?? Date.now;
  return {
    acquireInitialRetryToken: async () => new Token(0, 0),
    refreshRetryTokenForRetry: async (token: RetryToken, info: RetryErrorInfo) => {
      const kind = retryKind(info.error);
      const retry = token.getRetryCount() + 1;
      // The middleware rethrows the request's own error when this rejects.
      if (kind === null || retry >= policy.maxAttempts) throw new Error('no retry');
      let delay = backoffMs(policy, retry - 1, kind, random);
      if (info.retryAfterHint instanceof Date) {
        const wanted = info.retryAfterHint.getTime() - now();
        delay = Math.max(delay, Math.min(wanted, policy.maxRetryAfterMs ?? policy.capMs));
      }
      options.onRetry?.({ retry, kind, delayMs: delay, error: info.error });
      return new Token(retry, delay);
    },
    recordSuccess: () => {},
  };
}

/** What to spread into an SDK client's config: the strategy and its attempt count. */
export function retryConfig(
  policy: RetryPolicy,
  options: RetryStrategyOptions = {},
): { retryStrategy: RetryStrategyV2; maxAttempts: number } {
  return { retryStrategy: retryStrategyFor(policy, options), maxAttempts: policy.maxAttempts };
}
