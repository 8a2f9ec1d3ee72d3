import { Readable } from 'node:stream';
import { FerryError } from '../errors/index.js';
import { MAX_QUERY_IDS } from './image-server.js';
import type { RevisionRecord } from './local-store.js';
import { verifiedObject } from './object-store.js';
import type { StoreBackend } from './store-backend.js';

export interface RemoteOptions {
  /** Bearer token (read or write scope). */
  readonly token?: string;
}

/**
 * A store behind `ferry serve`, as a replication endpoint. Every object read
 * is hashed as it arrives and refused unless it matches its id; the server
 * checks every object written.
 */
export class RemoteStore implements StoreBackend {
  readonly name: string;
  readonly #base: string;
  readonly #token: string | undefined;

  constructor(url: string, options: RemoteOptions = {}) {
    this.#base = url.replace(/\/+$/, '');
    this.name = this.#base;
    this.#token = options.token;
  }

  #headers(extra: Record<string, string> = {}): Record<string, string> {
    return {
      ...(this.#token === undefined ? {} : { authorization: `Bearer ${this.#token}` }),
      ...extra,
    };
  }

  async #json<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const res = await this.#fetch(path, {
      method,
      headers: this.#headers(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      ...(signal === undefined ? {} : { signal }),
    });
    return (await res.json()) as T;
  }

  async #fetch(path: string, init: RequestInit & { duplex?: 'half' }): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(`${this.#base}${path}`, init);
    } catch (error) {
      throw new FerryError('FERRY_IO', `Cannot reach ${this.#base}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    if (res.ok) return res;
    let detail: { error?: { code?: string; message?: string } } = {};
    try {
      detail = (await res.json()) as typeof detail;
    } catch {
      // not JSON
    }
    const code = detail.error?.code;
    const mapped =
      res.status === 401 || res.status === 403
        ? 'FERRY_UNAUTHORIZED'
        : res.status === 404
          ? 'FERRY_STORE_NOT_FOUND'
          : code === 'FERRY_STORE_OBJECT_CORRUPT'
            ? 'FERRY_STORE_OBJECT_CORRUPT'
            : 'FERRY_IO';
    throw new FerryError(
      mapped,
      `Cannot ${init.method ?? 'GET'} ${this.#base}${path}: ${res.status} ${detail.error?.message ?? res.statusText}`,
      {
        details: { status: res.status, code: code ?? null },
      },
    );
  }

  async streams(signal?: AbortSignal): Promise<string[]> {
    return (await this.#json<{ streams: string[] }>('GET', '/v1/streams', undefined, signal))
      .streams;
  }

  async revisions(stream: string, signal?: AbortSignal): Promise<RevisionRecord[]> {
    const path = `/v1/streams/${stream.split('/').map(encodeURIComponent).join('/')}/revisions`;
    return (await this.#json<{ revisions: RevisionRecord[] }>('GET', path, undefined, signal))
      .revisions;
  }

  async missing(ids: readonly string[], signal?: AbortSignal): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < ids.length; i += MAX_QUERY_IDS) {
      const r = await this.#json<{ missing: string[] }>(
        'POST',
        '/v1/objects/missing',
        { ids: ids.slice(i, i + MAX_QUERY_IDS) },
        signal,
      );
      out.push(...r.missing);
    }
    return out;
  }

  async *readObject(id: string, signal?: AbortSignal): AsyncGenerator<Buffer> {
    const res = await this.#fetch(`/v1/objects/${id}`, {
      headers: this.#headers(),
      ...(signal === undefined ? {} : { signal }),
    });
    if (res.body === null)
      throw new FerryError('FERRY_IO', `Cannot read object ${id.slice(0, 16)}…: empty response`);
    const base = this.#base;
    const body = res.body as import('node:stream/web').ReadableStream<Uint8Array>;
    // Transport failures become FERRY_IO; the hash check stays outside, so corruption keeps its code.
    const transfer = async function* (): AsyncGenerator<Buffer> {
      try {
        for await (const chunk of Readable.fromWeb(body)) yield chunk as Buffer;
      } catch (error) {
        throw new FerryError(
          'FERRY_IO',
          `Cannot read object ${id.slice(0, 16)}… from ${base}: the transfer broke off`,
          { cause: error },
        );
      }
    };
    yield* verifiedObject(id, transfer(), base);
  }

  async putObject(
    id: string,
    size: number,
    data: AsyncIterable<Buffer>,
    signal?: AbortSignal,
  ): Promise<void> {
    await this.#fetch(`/v1/objects/${id}`, {
      method: 'PUT',
      headers: this.#headers({
        'content-type': 'application/octet-stream',
        'content-length': String(size),
      }),
      body: Readable.from(data) as unknown as ReadableStream,
      duplex: 'half',
      ...(signal === undefined ? {} : { signal }),
    });
  }

  async commit(stream: string, record: RevisionRecord, signal?: AbortSignal): Promise<void> {
    const path = `/v1/streams/${stream.split('/').map(encodeURIComponent).join('/')}/revisions`;
    await this.#json('POST', path, { record }, signal);
  }
}
