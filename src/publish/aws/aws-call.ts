import { FerryError } from '../../errors/index.js';

/** What the SDK's service exceptions carry (the AWS error code is the name). */
interface SdkError {
  readonly name?: string;
  readonly Code?: string;
  readonly code?: string;
  readonly $metadata?: { readonly httpStatusCode?: number };
  readonly $fault?: 'client' | 'server';
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

const THROTTLES = new Set([
  'RequestThrottledException',
  'ThrottlingException',
  'Throttling',
  'RequestLimitExceeded',
  'SlowDown',
  'TooManyRequestsException',
]);

/** AWS asks us to slow down (EBS RequestThrottledException, EC2 RequestLimitExceeded, 429, 503). */
export function isThrottle(error: unknown): boolean {
  const code = awsErrorCode(error);
  const s = status(error);
  return (code !== undefined && THROTTLES.has(code)) || s === 429 || s === 503;
}

const NETWORK = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'InternalServerException',
  'InternalError',
  'ServiceUnavailable',
]);

/** A failure worth another try: a server fault, a reset connection, a timeout. */
export function isTransient(error: unknown): boolean {
  if (isThrottle(error)) return true;
  const code = awsErrorCode(error) ?? '';
  const s = status(error);
  const errno = (error as { code?: string } | null)?.code;
  return (
    NETWORK.has(code) ||
    (errno !== undefined && NETWORK.has(errno)) ||
    (s !== undefined && s >= 500) ||
    (error as SdkError | null)?.$fault === 'server'
  );
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

/** Full-jitter exponential backoff: a random delay up to min(cap, base * 2^attempt). */
export function backoff(attempt: number, baseMs = 100, capMs = 10_000): number {
  return Math.random() * Math.min(capMs, baseMs * 2 ** Math.min(attempt, 20));
}

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
  /** Attempts in all, throttling included (default 8). */
  readonly attempts?: number;
  /** Called before waiting out a throttle. */
  readonly onThrottle?: () => void;
  /** Extra failures worth retrying (besides throttles and transient faults). */
  readonly retryIf?: (error: unknown, attempt: number) => boolean;
}

/**
 * Calls `fn` until it succeeds, retrying throttles and transient faults with
 * full-jitter backoff; the last failure is wrapped in FERRY_AWS_REQUEST.
 */
export async function awsCall<T>(
  operation: string,
  fn: () => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  const attempts = options.attempts ?? 8;
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
      await sleep(backoff(attempt), options.signal);
    }
  }
}
