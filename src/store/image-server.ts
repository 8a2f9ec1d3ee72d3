import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { FerryError, isFerryError } from '../errors/index.js';
import type { LocalStore, RevisionRecord } from './local-store.js';
import { MANIFEST_LIMITS } from './manifest.js';
import { isObjectId, ObjectBatch } from './object-store.js';

export type Scope = 'read' | 'write';

/** A token as the server keeps it: never the token itself, only its SHA-256. */
export interface TokenEntry {
  readonly name: string;
  readonly sha256: string;
  readonly scope: Scope;
}

export interface ServerOptions {
  readonly host?: string;
  readonly port?: number;
  readonly tokens: readonly TokenEntry[];
  /** Reads without a token (writes always need one). */
  readonly anonymousRead?: boolean;
  readonly tls?: {
    readonly cert: Buffer;
    readonly key: Buffer;
    readonly ca?: Buffer;
    readonly requireClientCert?: boolean;
  };
  /** Access log lines (method, path, status, token name; never the token). */
  readonly log?: (line: string) => void;
}

/** Store errors that are the client's doing: 400, not 500. */
const CLIENT_ERRORS: ReadonlySet<string> = new Set([
  'FERRY_USAGE',
  'FERRY_STORE_OBJECT_CORRUPT',
  'FERRY_STORE_MANIFEST_INVALID',
  'FERRY_STORE_AMBIGUOUS',
  'FERRY_STORE_NAME_INVALID',
]);

/** Largest JSON request body (a list of ids to check, a revision record). */
const MAX_JSON = 8 * 1024 * 1024;
/** Ids per missing-objects query. */
export const MAX_QUERY_IDS = 20_000;

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Reads a tokens file: [{name, sha256 | token, scope}], tokens hashed as they are read. */
export async function loadTokens(path: string): Promise<TokenEntry[]> {
  const raw = JSON.parse(await readFile(path, 'utf8')) as Array<{
    name?: unknown;
    sha256?: unknown;
    token?: unknown;
    scope?: unknown;
  }>;
  if (!Array.isArray(raw))
    throw new FerryError('FERRY_USAGE', `Cannot read tokens from ${path}: not a JSON array`);
  return raw.map((t, i) => {
    const scope = t.scope === 'write' ? 'write' : t.scope === 'read' ? 'read' : null;
    const sha =
      typeof t.sha256 === 'string'
        ? t.sha256.toLowerCase()
        : typeof t.token === 'string'
          ? hashToken(t.token)
          : null;
    if (scope === null || sha === null || !/^[0-9a-f]{64}$/.test(sha)) {
      throw new FerryError(
        'FERRY_USAGE',
        `Cannot read tokens from ${path}: entry ${i} needs a scope (read|write) and a token or sha256`,
      );
    }
    return { name: typeof t.name === 'string' ? t.name : `token-${i}`, sha256: sha, scope };
  });
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > MAX_JSON) throw new HttpError(413, 'FERRY_USAGE', 'request body too large');
    parts.push(c as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(parts).toString('utf8'));
  } catch {
    throw new HttpError(400, 'FERRY_USAGE', 'request body is not JSON');
  }
}

/**
 * The image server: a store over HTTP(S).
 *
 *   GET  /v1/streams                         {streams}
 *   GET  /v1/streams/NAME/revisions          {stream, revisions}
 *   POST /v1/streams/NAME/revisions          commit {record}; every object must be present   (write)
 *   POST /v1/objects/missing                 {ids} -> {missing}
 *   HEAD /v1/objects/ID, GET /v1/objects/ID  an object (manifests too), hashed as it streams
 *   PUT  /v1/objects/ID                      store an object; refused unless it hashes to ID (write)
 *
 * Bearer tokens with read or write scope, compared in constant time through
 * their SHA-256; no anonymous writes; tokens are never logged.
 */
export class ImageServer {
  readonly #store: LocalStore;
  readonly #options: ServerOptions;
  readonly #server: Server;
  /** Objects received and complete, waiting for the next commit to make them durable and visible. */
  readonly #batch = new ObjectBatch();

  constructor(store: LocalStore, options: ServerOptions) {
    this.#store = store;
    this.#options = options;
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      void this.#handle(req, res);
    };
    this.#server =
      options.tls === undefined
        ? createHttpServer(handler)
        : createHttpsServer(
            {
              cert: options.tls.cert,
              key: options.tls.key,
              ...(options.tls.ca === undefined ? {} : { ca: options.tls.ca }),
              requestCert: options.tls.requireClientCert === true,
              rejectUnauthorized: options.tls.requireClientCert === true,
            },
            handler,
          );
  }

  /** Starts listening (127.0.0.1 unless told otherwise); resolves to the base URL. */
  listen(): Promise<string> {
    const host = this.#options.host ?? '127.0.0.1';
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#options.port ?? 0, host, () => {
        const a = this.#server.address() as AddressInfo;
        const h = a.family === 'IPv6' ? `[${a.address}]` : a.address;
        resolve(`${this.#options.tls === undefined ? 'http' : 'https'}://${h}:${a.port}`);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections?.();
    });
  }

  /** The scope the request's token grants, or null for none. */
  #scope(req: IncomingMessage): { scope: Scope | null; who: string } {
    const h = req.headers.authorization;
    if (h === undefined || !h.startsWith('Bearer ')) {
      return { scope: this.#options.anonymousRead === true ? 'read' : null, who: '-' };
    }
    const presented = Buffer.from(hashToken(h.slice(7).trim()), 'hex');
    let found: TokenEntry | null = null;
    // Compare against every entry, always, in constant time per entry.
    for (const t of this.#options.tokens) {
      if (timingSafeEqual(presented, Buffer.from(t.sha256, 'hex')) && found === null) found = t;
    }
    if (found === null) return { scope: null, who: 'invalid-token' };
    return { scope: found.scope, who: found.name };
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { scope, who } = this.#scope(req);
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    try {
      const needs: Scope =
        method === 'GET' ||
        method === 'HEAD' ||
        (method === 'POST' && path === '/v1/objects/missing')
          ? 'read'
          : 'write';
      if (scope === null)
        throw new HttpError(401, 'FERRY_UNAUTHORIZED', 'a valid bearer token is required');
      if (needs === 'write' && scope !== 'write')
        throw new HttpError(403, 'FERRY_UNAUTHORIZED', 'this token may only read');
      await this.#route(method, path, req, res);
    } catch (error) {
      if (res.headersSent) {
        res.destroy();
      } else if (error instanceof HttpError) {
        send(res, error.status, { error: { code: error.code, message: error.message } });
      } else if (isFerryError(error)) {
        const status =
          error.code === 'FERRY_STORE_NOT_FOUND' ? 404 : CLIENT_ERRORS.has(error.code) ? 400 : 500;
        send(res, status, { error: error.toJSON() });
      } else {
        send(res, 500, { error: { code: 'FERRY_INTERNAL', message: 'internal error' } });
      }
    } finally {
      this.#options.log?.(`${method} ${path} ${res.statusCode} ${who}`);
    }
  }

  async #route(
    method: string,
    path: string,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<void> {
    const store = this.#store;
    if (method === 'GET' && path === '/v1/streams') {
      send(res, 200, { streams: await store.streams() });
      return;
    }
    const rev = /^\/v1\/streams\/(.+)\/revisions$/.exec(path);
    if (rev !== null) {
      const stream = decodeURIComponent(rev[1]!);
      if (method === 'GET') {
        let revisions: RevisionRecord[] = [];
        try {
          revisions = await store.revisions(stream);
        } catch (error) {
          if (!(isFerryError(error) && error.code === 'FERRY_STORE_NOT_FOUND')) throw error;
        }
        send(res, 200, { stream, revisions });
        return;
      }
      if (method === 'POST') {
        const body = (await readJson(req)) as { record?: RevisionRecord };
        const record = body.record;
        if (record === undefined || typeof record.id !== 'string' || !isObjectId(record.id)) {
          throw new HttpError(400, 'FERRY_USAGE', 'the body needs {record: {id, created, source}}');
        }
        await store.objects.publish(this.#batch);
        const r = await store.commitRecord(stream, record);
        send(res, r.unchanged ? 200 : 201, r);
        return;
      }
    }
    if (method === 'POST' && path === '/v1/objects/missing') {
      const body = (await readJson(req)) as { ids?: unknown };
      if (
        !Array.isArray(body.ids) ||
        body.ids.length > MAX_QUERY_IDS ||
        !body.ids.every((x) => typeof x === 'string' && isObjectId(x))
      ) {
        throw new HttpError(
          400,
          'FERRY_USAGE',
          `the body needs {ids: [up to ${MAX_QUERY_IDS} SHA-512 hex ids]}`,
        );
      }
      const missing: string[] = [];
      for (const id of body.ids as string[]) {
        if (!this.#batch.has(id) && !(await store.objects.has(id))) missing.push(id);
      }
      send(res, 200, { missing });
      return;
    }
    const obj = /^\/v1\/objects\/([0-9a-f]{128})$/.exec(path);
    if (obj !== null) {
      const id = obj[1]!;
      if (method === 'HEAD' || method === 'GET') {
        if (this.#batch.has(id)) await store.objects.publish(this.#batch);
        if (!(await store.objects.has(id)))
          throw new HttpError(404, 'FERRY_STORE_NOT_FOUND', 'no such object');
        const size = await store.objects.size(id);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
        if (method === 'HEAD') {
          res.end();
          return;
        }
        // A corrupt object fails at its end: the connection is cut, the client sees a short body.
        for await (const chunk of store.objects.read(id)) {
          if (!res.write(chunk)) await new Promise((r) => res.once('drain', r));
        }
        res.end();
        return;
      }
      if (method === 'PUT') {
        const length = Number(req.headers['content-length']);
        if (
          !Number.isSafeInteger(length) ||
          length < 0 ||
          length > MANIFEST_LIMITS.maxManifestBytes * 1024
        ) {
          throw new HttpError(411, 'FERRY_USAGE', 'PUT needs a Content-Length');
        }
        if (this.#batch.has(id) || (await store.objects.has(id))) {
          req.resume();
          send(res, 200, { id, size: length, added: false });
          return;
        }
        // Unsynced in tmp/ until a commit publishes the batch: one syncfs per revision, not per object.
        const r = await store.objects.put(
          { kind: 'stream', stream: req as AsyncIterable<Buffer>, size: length },
          id,
          undefined,
          this.#batch,
        );
        send(res, r.added ? 201 : 200, { id, size: r.size, added: r.added });
        return;
      }
    }
    throw new HttpError(404, 'FERRY_NOT_FOUND', `no route for ${method} ${path}`);
  }
}
