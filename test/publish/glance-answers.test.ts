/**
 * The Glance client against a server that answers badly: oversized bodies,
 * non-JSON, HTML errors, throttling, a refused token, hostile next links and
 * images. A small node:http server stands in for Glance here; what a real
 * Glance does is in glance-client.test.ts and glance-upload.test.ts.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import {
  type AddressInfo,
  createServer as createNetServer,
  type Server as NetServer,
} from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { isFerryError } from '../../src/errors/index.js';
import { GlanceClient } from '../../src/publish/openstack/glance-client.js';
import { retryAfterMs } from '../../src/publish/openstack/glance-http.js';
import type { ImageSession } from '../../src/publish/openstack/image-session.js';

function* zeros(total: number): Generator<Buffer> {
  const chunk = Buffer.alloc(1024 * 1024);
  for (let left = total; left > 0; left -= chunk.length)
    yield chunk.subarray(0, Math.min(left, chunk.length));
}

/** Listens on a loopback port and returns a Glance client for it (no auth). */
async function clientOf(server: Server | NetServer): Promise<GlanceClient> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return new GlanceClient({
    session: {
      imageUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      projectId: 'p',
      token: async () => 't',
      invalidate: () => {},
    },
  });
}

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

const ID = randomUUID();
function image(extra: Record<string, unknown> = {}) {
  return {
    id: ID,
    name: 'x',
    status: 'queued',
    visibility: 'shared',
    protected: false,
    tags: [],
    disk_format: 'raw',
    container_format: 'bare',
    size: null,
    ...extra,
  };
}

describe('publish: Glance client, bad answers', () => {
  let server: Server;
  let url: string;
  let handler: Handler = (_q, res) => res.end();
  let count = 0;
  const tokens: Array<string | undefined> = [];
  let invalidated = 0;

  before(async () => {
    server = createServer((req, res) => {
      count++;
      tokens.push(req.headers['x-auth-token'] as string | undefined);
      req.resume();
      req.once('end', () => handler(req, res, count));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });

  function client(): GlanceClient {
    let n = 0;
    const session: ImageSession = {
      imageUrl: url,
      projectId: 'p',
      token: async () => `token-${n}`,
      invalidate: () => {
        n++;
        invalidated++;
      },
    };
    count = 0;
    tokens.length = 0;
    invalidated = 0;
    return new GlanceClient({
      session,
      retry: { maxAttempts: 3, baseMs: 10, capMs: 50 },
      maxResponseBytes: 64 * 1024,
    });
  }
  const json = (res: ServerResponse, status: number, body: unknown) =>
    res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));

  it('refuses an oversized answer and a non-JSON one', async () => {
    const c = client();
    handler = (_q, res) => json(res, 200, image({ description: 'x'.repeat(100_000) }));
    await assert.rejects(
      c.getImage(ID),
      (e) => isFerryError(e, 'FERRY_GLANCE_RESPONSE') && e.details.limit === 65536,
    );
    handler = (_q, res) => res.writeHead(200).end('<html>not json</html>');
    await assert.rejects(c.getImage(ID), (e) => isFerryError(e, 'FERRY_GLANCE_RESPONSE'));
    c.close();
  });

  it('refuses a mistyped image', async () => {
    const c = client();
    for (const bad of [
      image({ status: 'exploded' }),
      image({ size: -1 }),
      image({ size: 2 ** 60 }),
      image({ id: '../../etc' }),
      image({ tags: 'ferry' }),
      [],
    ]) {
      handler = (_q, res) => json(res, 200, bad);
      await assert.rejects(
        c.getImage(ID),
        (e) => isFerryError(e, 'FERRY_GLANCE_RESPONSE'),
        JSON.stringify(bad).slice(0, 60),
      );
    }
    c.close();
  });

  it('retries a 503 (HTML body, capped message) for idempotent calls only', async () => {
    const c = client();
    handler = (_q, res) =>
      res
        .writeHead(503, { 'Content-Type': 'text/html' })
        .end(`<html><body><h1>503</h1>${'busy '.repeat(40_000)}</body></html>`);
    await assert.rejects(
      c.getImage(ID),
      (e) =>
        isFerryError(e, 'FERRY_GLANCE_REQUEST') &&
        e.details.status === 503 &&
        String(e.details.glanceMessage).length <= 503 &&
        String(e.details.glanceMessage).startsWith('503 busy'),
    );
    assert.equal(count, 3, 'three attempts for a GET');
    const c2 = client();
    await assert.rejects(
      c2.createImage({ name: 'x', disk_format: 'raw', container_format: 'bare' }),
    );
    assert.equal(count, 1, 'a POST without our id is not repeated');
    handler = (_q, res, n) =>
      n === 1 ? res.writeHead(429, { 'Retry-After': '0' }).end() : json(res, 200, image());
    const c3 = client();
    assert.equal((await c3.getImage(ID))?.id, ID);
    assert.equal(count, 2);
    for (const x of [c, c2, c3]) x.close();
  });

  it('a 401 fetches a new token once, then fails coded', async () => {
    const c = client();
    handler = (req, res) =>
      req.headers['x-auth-token'] === 'token-1'
        ? json(res, 200, image())
        : res.writeHead(401).end();
    assert.equal((await c.getImage(ID))?.id, ID);
    assert.deepEqual(tokens, ['token-0', 'token-1']);
    assert.equal(invalidated, 1);
    handler = (_q, res) =>
      res.writeHead(401).end('{"message": "The request you have made requires authentication."}');
    await assert.rejects(
      c.getImage(ID),
      (e) =>
        isFerryError(e, 'FERRY_GLANCE_UNAUTHORIZED') &&
        /requires authentication/.test(String(e.details.glanceMessage)),
    );
    c.close();
  });

  it('refuses a next link to elsewhere, and pages that loop', async () => {
    const c = client();
    handler = (_q, res) =>
      json(res, 200, { images: [image()], next: 'http://evil.example/v2/images?marker=x' });
    await assert.rejects(c.listImages(), (e) => isFerryError(e, 'FERRY_GLANCE_RESPONSE'));
    handler = (_q, res) =>
      json(res, 200, { images: [image()], next: `/v2/images?marker=${ID}&limit=1` });
    count = 0;
    await assert.rejects(c.listImages({}, { pageSize: 1 }), (e) =>
      isFerryError(e, 'FERRY_GLANCE_RESPONSE'),
    );
    assert.equal(count, 2);
    handler = (_q, res) => json(res, 200, { images: [image(), image({ id: randomUUID() })] });
    await assert.rejects(c.listImages({}, { pageSize: 1 }), (e) =>
      isFerryError(e, 'FERRY_GLANCE_RESPONSE'),
    );
    c.close();
  });

  it('a data send that Glance cuts off is a coded broken connection; an early answer is kept', async (t) => {
    const size = 64 * 1024 * 1024;
    const body = () => Readable.from(zeros(size));
    // Reads the request head, then resets the connection without an answer.
    const cutter = createNetServer((socket) => {
      socket.once('data', () => socket.resetAndDestroy());
    });
    const c = await clientOf(cutter);
    t.after(() => cutter.close());
    await assert.rejects(
      c.uploadData(ID, { body: body(), size }),
      (e) =>
        isFerryError(e, 'FERRY_GLANCE_REQUEST') &&
        (e.details.errno === 'ECONNRESET' || e.details.errno === 'EPIPE') &&
        Number(e.details.sent) < size &&
        e.details.size === size &&
        e.details.status === undefined,
    );
    c.close();
    // Glance answers 409 before the body is in and reads on: the answer counts.
    const early = createServer((req, res) => {
      json(res, 409, { message: 'Image status transition from active to saving is not allowed' });
      req.resume();
    });
    const c2 = await clientOf(early);
    t.after(() => {
      early.closeAllConnections();
      early.close();
    });
    await assert.rejects(
      c2.uploadData(ID, { body: body(), size }),
      (e) =>
        isFerryError(e, 'FERRY_GLANCE_CONFLICT') &&
        e.details.status === 409 &&
        /not allowed/.test(String(e.details.glanceMessage)),
    );
    c2.close();
  });

  it('reads Retry-After as seconds or a date', () => {
    assert.equal(retryAfterMs('3'), 3000);
    assert.equal(retryAfterMs(new Date(10_000).toUTCString(), 4000), 6000);
    assert.equal(retryAfterMs('soon'), undefined);
    assert.equal(retryAfterMs(undefined), undefined);
  });
});
