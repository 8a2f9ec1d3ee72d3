/**
 * The one request Keystone auth makes, over node:http(s) so that a cloud's
 * cacert and verify apply: a POST whose answer is read up to
 * MAX_KEYSTONE_BODY, with a per-request timeout and an AbortSignal.
 */
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { FerryError } from '../../errors/index.js';

/** A token response with a catalog is some KiB; a big cloud's is under 1 MiB. */
export const MAX_KEYSTONE_BODY = 4 * 1024 * 1024;

export interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

export interface Transport {
  readonly ca?: Buffer;
  readonly verify: boolean;
  readonly timeoutMs: number;
}

export function aborted(action: string, cause?: unknown): FerryError {
  return new FerryError('FERRY_ABORTED', `Cannot ${action}: the operation was aborted`, {
    ...(cause === undefined ? {} : { cause }),
  });
}

/** What a request is destroyed with when the answer passes MAX_KEYSTONE_BODY. */
export class BodyTooLarge extends Error {}

/** One POST, its answer read up to MAX_KEYSTONE_BODY. */
export function post(url: URL, body: string, t: Transport, signal?: AbortSignal): Promise<Reply> {
  return new Promise((resolvePromise, reject) => {
    const lib = url.protocol === 'https:' ? https : http;
    const req = lib.request(
      url,
      {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          Accept: 'application/json',
          'Content-Length': Buffer.byteLength(body),
        },
        timeout: t.timeoutMs,
        ...(signal === undefined ? {} : { signal }),
        ...(url.protocol === 'https:'
          ? { rejectUnauthorized: t.verify, ...(t.ca === undefined ? {} : { ca: t.ca }) }
          : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_KEYSTONE_BODY) {
            req.destroy(new BodyTooLarge());
            return;
          }
          chunks.push(c);
        });
        res.on('end', () =>
          resolvePromise({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () =>
      req.destroy(
        Object.assign(new Error('Keystone did not answer in time'), { code: 'ETIMEDOUT' }),
      ),
    );
    req.on('error', reject);
    req.end(body);
  });
}

export function badResponse(
  url: string,
  reason: string,
  details: Record<string, string | number> = {},
) {
  return new FerryError(
    'FERRY_KEYSTONE_RESPONSE',
    `Cannot use Keystone's answer from ${url}: ${reason}`,
    {
      details: { url, ...details },
    },
  );
}

export async function readCa(path: string): Promise<Buffer> {
  try {
    const ca = await readFile(path);
    if (ca.length > 1024 * 1024) throw new Error('over 1 MiB');
    return ca;
  } catch (error) {
    throw new FerryError(
      'FERRY_IO',
      `Cannot read the CA certificates ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      {
        details: { path },
        cause: error,
      },
    );
  }
}

/** Races `promise` against `signal` (the promise itself goes on for the others waiting on it). */
export function withSignal<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  action: string,
): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.reject(aborted(action, signal.reason));
  return new Promise<T>((resolvePromise, reject) => {
    const onAbort = () => reject(aborted(action, signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolvePromise(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
