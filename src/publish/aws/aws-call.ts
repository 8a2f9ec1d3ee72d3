import { FerryError } from '../../errors/index.js';
import { backoffMs, DEFAULT_RETRY_POLICY, retryKind } from '../retry.js';

/** What the SDK's service exceptions carry (the AWS error code is the name). */
interface SdkError {
  readonly name?: string;
  readonly Code?: string;
  readonly code?: string;
  readonly $metadata?: { readonly httpStatusCode?: number };
}

/** The AWS error code of an SDK error ("RequestThrottledException", "InvalidSnapshot.NotFound"). */
export function awsErrorCode(error: unknown): string | undefined {
  if (error === null || typeof error !== 'object') return undefined;
  const e = error as SdkError;
  return e.Code ?? (e.name === 'Error' ? undefined : e.name) ?? e.code;
}

function status(error: unknown): number | undefined {
  return (error as SdkError | null)?.$metadata?.httpStatusCode;
}

/**
 * AWS asks us to slow down: the throttling codes and 429 of retry.ts's
 * classification, and 503 (EBS direct answers it for a busy snapshot).
 */
export function isThrottle(error: unknown): boolean {
  return retryKind(error) === 'throttling' || status(error) === 503;
}

/** A failure worth another try (retry.ts: throttling, server faults, broken connections). */
export function isTransient(error: unknown): boolean {
  return retryKind(error) !== null;
}

/** Resolves after `ms`, or rejects with FERRY_ABORTED when `signal` fires first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(aborted(signal));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(aborted(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

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
export function awsFailure(
  operation: string,
  error: unknown,
  signal?: AbortSignal,
  details: Readonly<Record<string, string | number | boolean | null>> = {},
): FerryError {
  if (error instanceof FerryError) return error;
  if (signal?.aborted === true) return aborted(signal);
  const code = awsErrorCode(error) ?? 'unknown';
  const message = error instanceof Error ? error.message : String(error);
  return new FerryError(
    'FERRY_AWS_REQUEST',
    `Cannot ${operation}: ${code}: ${message.slice(0, 500)}`,
    {
      details: { operation, awsCode: code, status: status(error) ?? null, ...details },
      cause: error,
    },
  );
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
