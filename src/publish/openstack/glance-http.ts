/**
 * The Glance client's HTTP layer: one JSON request with the session's token,
 * `Accept: application/json`, capped bodies, coded errors and retries for
 * idempotent calls; and one streaming request body (image data) with
 * Content-Length, backpressure, progress and an AbortSignal.
 *
 * Node's http/https, not fetch: a request body that is a Readable is
 * written as the socket drains, so memory stays at the stream's
 * highWaterMark plus the socket's buffer whatever the image size.
 */
import {
  type Agent,
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingMessage,
} from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { type Readable, Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ErrorCode } from '../../errors/index.js';
import { FerryError } from '../../errors/index.js';
import {
  backoffMs,
  CONNECTION_CODES,
  checkRetryPolicy,
  type RetryEvent,
  type RetryPolicy,
} from '../retry.js';
import type { ImageSession } from './image-session.js';

/** Glance calls: about 30 s of patience for an idempotent call. */
export const GLANCE_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 6,
  baseMs: 200,
  capMs: 10_000,
  throttleBaseMs: 1000,
  maxRetryAfterMs: 30_000,
};

/** A JSON answer bigger than this is refused (a page of 1000 images is well under). */
export const DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024;
/** Error bodies are read up to this much; the rest is dropped. */
export const DEFAULT_MAX_ERROR_BYTES = 64 * 1024;
/** Glance's message, as kept in an error's details and message. */
const MAX_MESSAGE_CHARS = 500;

/** Statuses worth repeating an idempotent call for. */
export const GLANCE_RETRY_STATUS: ReadonlySet<number> = new Set([429, 500, 502, 503, 504]);

export interface GlanceHttpOptions {
  readonly session: ImageSession;
  /** Default GLANCE_RETRY_POLICY. */
  readonly retry?: RetryPolicy;
  /** Sent with every request (tests choose an identity with these). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Default DEFAULT_MAX_RESPONSE_BYTES. */
  readonly maxResponseBytes?: number;
  /** Default DEFAULT_MAX_ERROR_BYTES. */
  readonly maxErrorBytes?: number;
  /** A JSON call whose socket is idle this long fails as a connection error (default 60 s). */
  readonly idleTimeoutMs?: number;
  /** [0, 1) for backoff jitter; default Math.random. */
  readonly random?: () => number;
  /** Told before each retry; must not throw. */
  readonly onRetry?: (
    event: RetryEvent & { readonly method: string; readonly path: string },
  ) => void;
}

export interface JsonRequest {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Path under the image URL, starting with /v2/, with its query string. */
  readonly path: string;
  readonly body?: unknown;
  /** Default application/json when there is a body. */
  readonly contentType?: string;
  /** Statuses that are success; anything else is an error. */
  readonly expect: readonly number[];
  /** Retry connection failures and 429/5xx (only for calls that are safe to repeat). */
  readonly idempotent: boolean;
  /** Extra headers for this call. */
  readonly headers?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal | undefined;
}

export interface JsonResponse {
  readonly status: number;
  /** The parsed body, or null when there was none. */
  readonly body: unknown;
}

export interface StreamRequest {
  readonly method: 'PUT';
  readonly path: string;
  readonly body: Readable;
  /** Sent as Content-Length; the body must produce exactly this many bytes. */
  readonly size: number;
  readonly expect: readonly number[];
  /** Told each chunk, before it is written: the bytes, and the bytes sent so far. */
  readonly onChunk?: (chunk: Buffer, sent: number) => void;
  readonly signal?: AbortSignal | undefined;
}

/** What a lower layer error looked like, for retry decisions. */
interface HttpFailure {
  readonly status?: number;
  readonly retryAfterMs?: number;
}

export function abortedError(action: string, cause?: unknown): FerryError {
  return new FerryError('FERRY_ABORTED', `Cannot ${action}: the operation was aborted`, {
    ...(cause === undefined ? {} : { cause }),
  });
}

export function throwIfAborted(signal: AbortSignal | undefined, action: string): void {
  if (signal?.aborted === true) throw abortedError(action, signal.reason);
}

/** Waits `ms`, or rejects with FERRY_ABORTED as soon as `signal` aborts. */
export async function abortableSleep(
  ms: number,
  signal: AbortSignal | undefined,
  action: string,
): Promise<void> {
  try {
    await sleep(ms, undefined, signal === undefined ? {} : { signal });
  } catch (error) {
    throw abortedError(action, error);
  }
}

/** Glance's message from an error body: JSON {message} or {error: {message}}, or HTML text. */
export function glanceMessage(raw: Buffer): string {
  const text = raw.toString('utf8');
  let message: string = text;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null) {
      const p = parsed as { message?: unknown; error?: { message?: unknown } };
      if (typeof p.message === 'string') message = p.message;
      else if (typeof p.error?.message === 'string') message = p.error.message;
    }
  } catch {
    // not JSON: an HTML or text page
  }
  const plain = message
    .replace(/<[^>]{0,200}>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return plain.length > MAX_MESSAGE_CHARS ? `${plain.slice(0, MAX_MESSAGE_CHARS)}...` : plain;
}

function codeForStatus(status: number): ErrorCode {
  if (status === 401) return 'FERRY_GLANCE_UNAUTHORIZED';
  if (status === 403) return 'FERRY_GLANCE_FORBIDDEN';
  if (status === 409) return 'FERRY_GLANCE_CONFLICT';
  return 'FERRY_GLANCE_REQUEST';
}

export function statusError(method: string, path: string, status: number, raw: Buffer): FerryError {
  const message = glanceMessage(raw);
  return new FerryError(
    codeForStatus(status),
    `Cannot ${method} ${pathOnly(path)}: Glance answered ${status}${message === '' ? '' : ` (${message})`}`,
    { details: { method, path: pathOnly(path), status, glanceMessage: message } },
  );
}

function pathOnly(path: string): string {
  const q = path.indexOf('?');
  return q < 0 ? path : path.slice(0, q);
}

/** Retry-After as milliseconds (seconds or an HTTP date), or undefined. */
export function retryAfterMs(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined || value.length > 64) return undefined;
  if (/^\d{1,9}$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function connectionCode(error: unknown): string | undefined {
  for (let e = error, depth = 0; depth < 5 && typeof e === 'object' && e !== null; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && CONNECTION_CODES.has(code)) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Reads a body up to `cap` bytes; `over` tells whether there was more. */
function readCapped(res: IncomingMessage, cap: number): Promise<{ data: Buffer; over: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    let over = false;
    res.on('data', (chunk: Buffer) => {
      if (over) return;
      if (length + chunk.length > cap) {
        chunks.push(chunk.subarray(0, cap - length));
        length = cap;
        over = true;
        // Enough: stop reading, the connection is not reused.
        res.destroy();
        resolve({ data: Buffer.concat(chunks), over });
        return;
      }
      chunks.push(chunk);
      length += chunk.length;
    });
    res.once('end', () => resolve({ data: Buffer.concat(chunks), over }));
    res.once('error', (e) => {
      if (over) return;
      reject(e);
    });
    res.once('close', () => {
      if (!res.complete && !over)
        reject(Object.assign(new Error('response cut short'), { code: 'ECONNRESET' }));
    });
  });
}

/**
 * One Glance endpoint: a keep-alive agent for JSON calls, a fresh connection
 * for each data upload (so a large body never waits behind, or breaks, a
 * pooled socket).
 */
export class GlanceHttp {
  readonly #session: ImageSession;
  readonly #base: URL;
  readonly #policy: RetryPolicy;
  readonly #headers: Readonly<Record<string, string>>;
  readonly #maxResponse: number;
  readonly #maxError: number;
  readonly #idleMs: number;
  readonly #random: () => number;
  readonly #onRetry: GlanceHttpOptions['onRetry'];
  readonly #agent: Agent;
  readonly #https: boolean;
  /** The cloud's cacert and verify, for every https connection (pooled or not). */
  readonly #tls: { ca?: Buffer; rejectUnauthorized?: boolean };

  constructor(options: GlanceHttpOptions) {
    this.#session = options.session;
    this.#base = new URL(options.session.imageUrl.replace(/\/+$/, ''));
    if (this.#base.protocol !== 'http:' && this.#base.protocol !== 'https:')
      throw new FerryError(
        'FERRY_USAGE',
        `Cannot use the image URL ${this.#base.href}: not http or https`,
      );
    this.#https = this.#base.protocol === 'https:';
    this.#policy = options.retry ?? GLANCE_RETRY_POLICY;
    checkRetryPolicy(this.#policy);
    this.#headers = options.headers ?? {};
    this.#maxResponse = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    this.#maxError = options.maxErrorBytes ?? DEFAULT_MAX_ERROR_BYTES;
    this.#idleMs = options.idleTimeoutMs ?? 60_000;
    this.#random = options.random ?? Math.random;
    this.#onRetry = options.onRetry;
    const tls = options.session.tls;
    this.#tls =
      !this.#https || tls === undefined
        ? {}
        : { rejectUnauthorized: tls.verify, ...(tls.ca === undefined ? {} : { ca: tls.ca }) };
    this.#agent = this.#https
      ? new HttpsAgent({ keepAlive: true, maxSockets: 8, ...this.#tls })
      : new HttpAgent({ keepAlive: true, maxSockets: 8 });
  }

  /** The image URL with its path prefix (a Glance behind a path, e.g. /image). */
  get base(): URL {
    return this.#base;
  }

  /** Closes the pooled sockets. */
  close(): void {
    this.#agent.destroy();
  }

  #url(path: string): URL {
    const prefix = this.#base.pathname.replace(/\/+$/, '');
    return new URL(`${this.#base.origin}${prefix}${path}`);
  }

  async #headersFor(signal: AbortSignal | undefined, extra: Readonly<Record<string, string>>) {
    const token = await this.#session.token(signal);
    const h: Record<string, string> = { Accept: 'application/json', ...this.#headers, ...extra };
    if (token !== null) h['X-Auth-Token'] = token;
    return h;
  }

  /** A JSON call; retried (when idempotent) on connection failures and 429/5xx; one re-auth on 401. */
  async json(req: JsonRequest): Promise<JsonResponse> {
    const action = `${req.method} ${pathOnly(req.path)}`;
    let reauthed = false;
    for (let attempt = 1; ; attempt++) {
      throwIfAborted(req.signal, action);
      let failure: HttpFailure;
      let error: unknown;
      try {
        const res = await this.#jsonOnce(req);
        if (res.status === 401 && !reauthed && !req.expect.includes(401)) {
          reauthed = true;
          this.#session.invalidate();
          attempt--;
          continue;
        }
        if (req.expect.includes(res.status)) {
          if (res.over)
            throw new FerryError(
              'FERRY_GLANCE_RESPONSE',
              `Cannot ${action}: the answer is over ${this.#maxResponse} bytes`,
              {
                details: {
                  method: req.method,
                  path: pathOnly(req.path),
                  status: res.status,
                  limit: this.#maxResponse,
                },
              },
            );
          return { status: res.status, body: parseJson(res.data, action, res.status) };
        }
        error = statusError(req.method, req.path, res.status, res.data);
        failure = { status: res.status, ...optional('retryAfterMs', res.retryAfterMs) };
        if (!GLANCE_RETRY_STATUS.has(res.status)) throw error;
      } catch (e) {
        if (e instanceof FerryError) throw e;
        if (req.signal?.aborted === true) throw abortedError(action, e);
        const code = connectionCode(e);
        if (code === undefined) throw tlsError(action, req.method, req.path, e) ?? e;
        error = new FerryError(
          'FERRY_GLANCE_REQUEST',
          `Cannot ${action}: the connection failed (${code})`,
          {
            details: { method: req.method, path: pathOnly(req.path), errno: code },
            cause: e,
          },
        );
        failure = {};
      }
      if (!req.idempotent || attempt >= this.#policy.maxAttempts) throw error;
      const kind =
        failure.status === 429
          ? 'throttling'
          : failure.status === undefined
            ? 'connection'
            : 'server';
      let delay = backoffMs(this.#policy, attempt - 1, kind, this.#random);
      if (failure.retryAfterMs !== undefined)
        delay = Math.max(
          delay,
          Math.min(failure.retryAfterMs, this.#policy.maxRetryAfterMs ?? this.#policy.capMs),
        );
      this.#onRetry?.({
        retry: attempt,
        kind,
        delayMs: delay,
        error,
        method: req.method,
        path: pathOnly(req.path),
      });
      await abortableSleep(delay, req.signal, action);
    }
  }

  async #jsonOnce(
    req: JsonRequest,
  ): Promise<{ status: number; data: Buffer; over: boolean; retryAfterMs?: number }> {
    const payload =
      req.body === undefined ? undefined : Buffer.from(JSON.stringify(req.body), 'utf8');
    const headers = await this.#headersFor(req.signal, {
      ...(payload === undefined
        ? {}
        : {
            'Content-Type': req.contentType ?? 'application/json',
            'Content-Length': String(payload.length),
          }),
      ...(req.headers ?? {}),
    });
    const url = this.#url(req.path);
    return new Promise((resolve, reject) => {
      const send = this.#https ? httpsRequest : httpRequest;
      const r = send(url, {
        method: req.method,
        headers,
        agent: this.#agent,
        ...(req.signal === undefined ? {} : { signal: req.signal }),
      });
      r.setTimeout(this.#idleMs, () =>
        r.destroy(
          Object.assign(new Error(`no answer for ${this.#idleMs} ms`), { code: 'ETIMEDOUT' }),
        ),
      );
      r.once('error', reject);
      r.once('response', (res) => {
        const status = res.statusCode ?? 0;
        const ok = req.expect.includes(status);
        const after = retryAfterMs(headerValue(res.headers['retry-after']));
        readCapped(res, ok ? this.#maxResponse : this.#maxError).then(
          ({ data, over }) =>
            resolve({ status, data, over: ok && over, ...optional('retryAfterMs', after) }),
          reject,
        );
      });
      r.end(payload);
    });
  }

  /**
   * Streams `body` as the request body (Content-Length `size`,
   * application/octet-stream). Not retried here: a stream cannot be
   * replayed; glance-upload.ts decides from the image's status.
   */
  /**
   * GETs `path` (image data) into `to`, at most `maxBytes` (the image's
   * size as Glance told it): more is a bad answer, not a bigger file. The
   * written file is whole when this resolves; the caller removes it on error.
   */
  async download(
    path: string,
    to: Writable,
    options: { readonly maxBytes: number; readonly signal?: AbortSignal | undefined },
  ): Promise<number> {
    const action = `GET ${pathOnly(path)}`;
    throwIfAborted(options.signal, action);
    const headers = await this.#headersFor(options.signal, { Accept: 'application/octet-stream' });
    const send = this.#https ? httpsRequest : httpRequest;
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const r = send(this.#url(path), {
        method: 'GET',
        headers,
        agent: false,
        ...this.#tls,
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      });
      r.setTimeout(this.#idleMs, () =>
        r.destroy(
          Object.assign(new Error(`no answer for ${this.#idleMs} ms`), { code: 'ETIMEDOUT' }),
        ),
      );
      r.once('error', (e) =>
        reject(
          options.signal?.aborted === true
            ? abortedError(action, e)
            : (tlsError(action, 'GET', path, e) ?? e),
        ),
      );
      r.once('response', resolve);
      r.end();
    });
    const status = res.statusCode ?? 0;
    if (status !== 200) {
      if (status === 401) this.#session.invalidate();
      const { data } = await readCapped(res, this.#maxError);
      throw statusError('GET', path, status, data);
    }
    let got = 0;
    const cap = new Transform({
      transform(chunk: Buffer, _enc, done) {
        got += chunk.length;
        if (got > options.maxBytes)
          done(
            new FerryError(
              'FERRY_GLANCE_RESPONSE',
              `Cannot ${action}: Glance sent more than the image's ${options.maxBytes} bytes`,
            ),
          );
        else done(null, chunk);
      },
    });
    try {
      await pipeline(res, cap, to, options.signal === undefined ? {} : { signal: options.signal });
    } catch (error) {
      if (options.signal?.aborted === true) throw abortedError(action, error);
      throw error;
    }
    return got;
  }

  async stream(req: StreamRequest): Promise<number> {
    const action = `${req.method} ${pathOnly(req.path)}`;
    throwIfAborted(req.signal, action);
    const answer = await this.#streamOnce(req, action);
    if (answer.status === 401) {
      // Glance checks the token before it reads the body: nothing was stored.
      // The next attempt (a new stream) gets a fresh token.
      this.#session.invalidate();
    }
    if (req.expect.includes(answer.status)) return answer.status;
    throw statusError(req.method, req.path, answer.status, answer.data);
  }

  #streamOnce(req: StreamRequest, action: string): Promise<{ status: number; data: Buffer }> {
    return this.#headersFor(req.signal, {
      'Content-Type': 'application/octet-stream',
      'Content-Length': String(req.size),
    }).then(
      (headers) =>
        new Promise((resolve, reject) => {
          const send = this.#https ? httpsRequest : httpRequest;
          const url = this.#url(req.path);
          let settled = false;
          let sent = 0;
          const fail = (e: unknown) => {
            if (settled) return;
            settled = true;
            req.body.destroy();
            r.destroy();
            if (req.signal?.aborted === true) reject(abortedError(action, e));
            else
              reject(
                e instanceof FerryError
                  ? e
                  : (tlsError(action, req.method, req.path, e) ??
                      this.#lostStream(req, action, e, sent)),
              );
          };
          // agent false: a connection of its own, closed after the answer.
          const r = send(url, {
            method: req.method,
            headers,
            agent: false,
            ...this.#tls,
            ...(req.signal === undefined ? {} : { signal: req.signal }),
          });
          r.setTimeout(this.#idleMs, () =>
            fail(
              Object.assign(new Error(`no progress for ${this.#idleMs} ms`), { code: 'ETIMEDOUT' }),
            ),
          );
          r.once('error', fail);
          r.once('response', (res) => {
            const status = res.statusCode ?? 0;
            // Glance may answer before it read everything (an error): stop sending.
            if (sent < req.size) req.body.destroy();
            readCapped(res, this.#maxError).then(({ data }) => {
              if (settled) return;
              settled = true;
              // An early answer: the request was never finished; drop its socket.
              if (sent < req.size) r.destroy();
              resolve({ status, data });
            }, fail);
          });
          req.body.on('data', (chunk: Buffer) => {
            sent += chunk.length;
            if (sent > req.size) {
              fail(
                new FerryError(
                  'FERRY_GLANCE_HASH_MISMATCH',
                  `Cannot ${action}: the source produced more than the declared ${req.size} bytes`,
                  { details: { size: req.size } },
                ),
              );
              return;
            }
            req.onChunk?.(chunk, sent);
            if (!r.write(chunk)) {
              req.body.pause();
              r.once('drain', () => req.body.resume());
            }
          });
          req.body.once('end', () => {
            if (sent !== req.size) {
              fail(
                new FerryError(
                  'FERRY_GLANCE_HASH_MISMATCH',
                  `Cannot ${action}: the source produced ${sent} bytes, not the declared ${req.size}`,
                  { details: { size: req.size, produced: sent } },
                ),
              );
              return;
            }
            r.end();
          });
          req.body.once('error', (e) =>
            fail(
              new FerryError('FERRY_IO', `Cannot ${action}: reading the image data failed`, {
                cause: e,
              }),
            ),
          );
        }),
    );
  }

  /**
   * A data send that broke before Glance's answer was read: the connection
   * failed (EPIPE, ECONNRESET, a timeout), or a socket error we do not name.
   * Glance that refuses a body often answers and closes before reading it;
   * the answer can then be lost with the reset, so the status is unknown
   * here and glance-upload.ts looks at the image instead.
   */
  #lostStream(req: StreamRequest, action: string, e: unknown, sent: number): FerryError {
    const errno = connectionCode(e) ?? (e as { code?: unknown } | null)?.code;
    const named = typeof errno === 'string' ? errno : 'unknown error';
    return new FerryError(
      'FERRY_GLANCE_REQUEST',
      `Cannot ${action}: the connection failed after ${sent} of ${req.size} bytes (${named})`,
      {
        details: {
          method: req.method,
          path: pathOnly(req.path),
          sent,
          size: req.size,
          ...(typeof errno === 'string' ? { errno } : {}),
        },
        cause: e,
      },
    );
  }
}

/**
 * A certificate the client refused (untrusted, expired, for another name):
 * FERRY_GLANCE_TLS, never retried; undefined for any other error.
 */
function tlsError(
  action: string,
  method: string,
  path: string,
  e: unknown,
): FerryError | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !TLS_CODE.test(code)) return undefined;
  return new FerryError(
    'FERRY_GLANCE_TLS',
    `Cannot ${action}: the image service's TLS certificate was refused (${code})`,
    {
      details: { method, path: pathOnly(path), errno: code },
      hint: "Give the cloud's CA certificates as cacert in clouds.yaml (or verify: false, to skip the check)",
      cause: e,
    },
  );
}

/** Node's codes for a refused certificate (OpenSSL's verify errors, and a name mismatch). */
const TLS_CODE =
  /CERT|SELF_SIGNED|UNABLE_TO_(GET_ISSUER|VERIFY)|ERR_TLS_CERT_ALTNAME_INVALID|SIGNATURE/;

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

function parseJson(data: Buffer, action: string, status: number): unknown {
  if (data.length === 0) return null;
  try {
    return JSON.parse(data.toString('utf8'));
  } catch (e) {
    throw new FerryError('FERRY_GLANCE_RESPONSE', `Cannot ${action}: the answer is not JSON`, {
      details: { status, bytes: data.length },
      cause: e,
    });
  }
}
