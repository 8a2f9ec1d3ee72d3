import { FerryError } from '../../errors/index.js';
import { backoffMs, DEFAULT_RETRY_POLICY, retryKind } from '../retry.js';
import { awsCode, httpStatus, awsFailure as sdkFailure, sleep } from './aws-failure.js';

/** The AWS error code of an SDK error ("RequestThrottledException", "InvalidSnapshot.NotFound"). */
export const awsErrorCode = awsCode;

/**
 * AWS asks us to slow down: the throttling codes and 429 of retry.ts's
 * classification, and 503 (EBS direct answers it for a busy snapshot).
 */
export function isThrottle(error: unknown): boolean {
  return retryKind(error) === 'throttling' || httpStatus(error) === 503;
}

/** A failure worth another try (retry.ts: throttling, server faults, broken connections). */
export function isTransient(error: unknown): boolean {
  return retryKind(error) !== null;
}

export { sleep };

export function aborted(signal: AbortSignal, what = 'publish'): FerryError {
  return new FerryError('FERRY_ABORTED', `Cannot ${what}: the operation was cancelled`, {
    cause: signal.reason,
  });
}

/** Full-jitter backoff before retry `retry` (0 for the first), by DEFAULT_RETRY_POLICY. */
export function backoff(retry: number, error?: unknown): number {
  return backoffMs(
    DEFAULT_RETRY_POLICY,
    retry,
    isThrottle(error) ? 'throttling' : 'server',
    Math.random,
  );
}

/**
 * Attempts for calls on the EBS direct client, which does not retry by
 * itself (the uploader's block loop adapts its concurrency to throttling).
 */
export const EBS_ATTEMPTS = DEFAULT_RETRY_POLICY.maxAttempts;

/** Wraps an SDK failure in FERRY_AWS_REQUEST (an abort becomes FERRY_ABORTED). */
/** An EBS or EC2 call that failed after its retries: FERRY_AWS_REQUEST naming the operation. */
export function awsFailure(
  operation: string,
  error: unknown,
  signal?: AbortSignal,
  details: Readonly<Record<string, string | number | boolean | null>> = {},
): FerryError {
  return sdkFailure('FERRY_AWS_REQUEST', operation, error, signal, { operation, ...details });
}

export interface RetryOptions {
  readonly signal?: AbortSignal;
  /**
   * Attempts in all, throttling included. Default 1: the EC2, KMS, S3 and
   * STS clients retry by their retryStrategy; EBS calls pass EBS_ATTEMPTS.
   */
  readonly attempts?: number;
  /** Called before waiting out a throttle. */
  readonly onThrottle?: () => void;
  /** Extra failures worth retrying (besides throttles and transient faults). */
  readonly retryIf?: (error: unknown, attempt: number) => boolean;
}

/**
 * Calls `fn` until it succeeds or `attempts` are spent, retrying throttles
 * and transient faults with full-jitter backoff; the last failure is wrapped
 * in FERRY_AWS_REQUEST.
 */
export async function awsCall<T>(
  operation: string,
  fn: () => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  const attempts = options.attempts ?? 1;
  for (let attempt = 0; ; attempt++) {
    if (options.signal?.aborted === true) throw aborted(options.signal);
    try {
      return await fn();
    } catch (error) {
      const again =
        !(options.signal?.aborted ?? false) &&
        attempt + 1 < attempts &&
        (isTransient(error) || options.retryIf?.(error, attempt) === true);
      if (!again) throw awsFailure(operation, error, options.signal);
      if (isThrottle(error)) options.onThrottle?.();
      await sleep(backoff(attempt, error), options.signal);
    }
  }
}
