/**
 * An AWS SDK v3 failure as a FerryError: an abort stays an abort
 * (FERRY_ABORTED), a refusal of the credentials is FERRY_UNAUTHORIZED, and
 * anything else gets the caller's code with AWS's error name and HTTP status
 * in the details. Callers match on codes; `details.awsCode` says which AWS
 * error it was.
 */
import { type ErrorCode, FerryError } from '../../errors/index.js';

interface SdkError {
  readonly name?: string;
  readonly message?: string;
  readonly Code?: string;
  readonly code?: string;
  readonly $metadata?: { readonly httpStatusCode?: number };
}

/** AWS's error code of an SDK error (`NoSuchUpload`, `InvalidSnapshot.NotFound`), or undefined. */
export function awsCode(error: unknown): string | undefined {
  if (error === null || typeof error !== 'object') return undefined;
  const e = error as SdkError;
  return e.Code ?? (e.name === 'Error' ? undefined : e.name) ?? e.code;
}

export function httpStatus(error: unknown): number | undefined {
  if (error === null || typeof error !== 'object') return undefined;
  return (error as SdkError).$metadata?.httpStatusCode;
}

export function isAbort(error: unknown, signal?: AbortSignal): boolean {
  return (
    signal?.aborted === true ||
    awsCode(error) === 'AbortError' ||
    (error instanceof FerryError && error.code === 'FERRY_ABORTED')
  );
}

/** `Cannot <action>: <AWS's name and message>` under `code` (FERRY_ABORTED when aborted). */
export function awsFailure(
  code: ErrorCode,
  action: string,
  error: unknown,
  signal?: AbortSignal,
  details: Readonly<Record<string, string | number | boolean | null>> = {},
): FerryError {
  if (error instanceof FerryError) return error;
  if (isAbort(error, signal))
    return new FerryError('FERRY_ABORTED', `Cannot ${action}: the operation was aborted`, {
      cause: error,
    });
  const e = (error ?? {}) as SdkError;
  const status = httpStatus(error);
  return new FerryError(
    status === 401 || status === 403 ? 'FERRY_UNAUTHORIZED' : code,
    `Cannot ${action}: ${awsCode(error) ?? 'Error'}: ${(e.message ?? String(error)).slice(0, 500)}`,
    {
      details: { ...details, awsCode: awsCode(error) ?? null, status: status ?? null },
      cause: error,
    },
  );
}

/** Rejects with FERRY_ABORTED when `signal` is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, action: string): void {
  if (signal?.aborted === true)
    throw new FerryError('FERRY_ABORTED', `Cannot ${action}: the operation was aborted`, {
      cause: signal.reason,
    });
}

/** Waits `ms`, or rejects with FERRY_ABORTED as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal, action = 'publish'): Promise<void> {
  throwIfAborted(signal, action);
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(
        new FerryError('FERRY_ABORTED', `Cannot ${action}: the operation was aborted`, {
          cause: signal?.reason,
        }),
      );
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
