/**
 * Keystone auth against a scripted server on loopback: what ferry sends for
 * each auth method, and what it does with answers no real Keystone should
 * give (bad JSON, an oversized body, no token header, a catalog of the wrong
 * shape, errors that quote the secret, silence) and with retries, one
 * shared re-auth, and aborts. Needs no Keystone.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { type FerryError, isFerryError } from '../../src/errors/index.js';
import { openImageSession } from '../../src/publish/openstack/keystone-auth.js';
import { findImageEndpoint, imageBaseUrl } from '../../src/publish/openstack/keystone-catalog.js';
import { MAX_KEYSTONE_BODY } from '../../src/publish/openstack/keystone-http.js';
import type { OpenStackCloud } from '../../src/publish/openstack/openstack-cloud.js';

const SECRET = 'hunter2-but-longer-secret';
const FAST = { maxAttempts: 3, baseMs: 1, capMs: 5 };

type Handler = (body: unknown, res: http.ServerResponse) => void;

function catalog(url = 'http://127.0.0.1:9292/v2') {
  return [
    { type: 'identity', endpoints: [] },
    { type: 'image', endpoints: [{ interface: 'public', region_id: 'R1', url }] },
  ];
}

function issue(res: http.ServerResponse, token: string, body: object = {}): void {
  const now = Date.now();
  res.writeHead(201, { 'Content-Type': 'application/json', 'X-Subject-Token': token });
  res.end(
    JSON.stringify({
      token: {
        issued_at: new Date(now).toISOString(),
        expires_at: new Date(now + 3600_000).toISOString(),
        project: { id: 'p1' },
        catalog: catalog(),
        ...body,
      },
    }),
  );
}

async function rejects(p: Promise<unknown>, code: string): Promise<FerryError> {
  let caught: unknown;
  try {
    await p;
  } catch (error) {
    caught = error;
  }
  assert.ok(isFerryError(caught), `expected ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.ok(!caught.message.includes(SECRET), 'the secret is in the message');
  assert.ok(!JSON.stringify(caught.details).includes(SECRET), 'the secret is in the details');
  return caught;
}

describe('Keystone auth against a scripted server', () => {
  let server: http.Server;
  let url: string;
  let handler: Handler;
  let requests: unknown[];

  before(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        let body: unknown = null;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          body = null;
        }
        requests.push({ path: req.url, body });
        handler(body, res);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  beforeEach(() => {
    requests = [];
    let n = 0;
    handler = (_b, res) => issue(res, `tok-${++n}`);
  });

  const cloud = (): OpenStackCloud => ({
    name: null,
    interface: 'public',
    verify: true,
    regionName: 'R1',
    authType: 'password',
    auth: {
      authUrl: `${url}/identity/v3`,
      user: { name: 'u', domain: { name: 'D' } },
      password: SECRET,
      project: { id: 'p1' },
    },
  });

  it('sends each auth method as Keystone v3 expects it', async () => {
    await openImageSession(cloud());
    await openImageSession({
      ...cloud(),
      authType: 'v3applicationcredential',
      auth: {
        authUrl: `${url}/v3`,
        credential: { name: 'ac', user: { id: 'u1' } },
        secret: SECRET,
      },
    });
    await openImageSession({
      ...cloud(),
      authType: 'token',
      auth: { authUrl: `${url}/v3`, token: 'T0', project: { name: 'P', domain: { id: 'd' } } },
    });
    assert.deepEqual(requests, [
      {
        path: '/identity/v3/auth/tokens',
        body: {
          auth: {
            identity: {
              methods: ['password'],
              password: { user: { name: 'u', domain: { name: 'D' }, password: SECRET } },
            },
            scope: { project: { id: 'p1' } },
          },
        },
      },
      {
        path: '/v3/auth/tokens',
        body: {
          auth: {
            identity: {
              methods: ['application_credential'],
              application_credential: { name: 'ac', user: { id: 'u1' }, secret: SECRET },
            },
          },
        },
      },
      {
        path: '/v3/auth/tokens',
        body: {
          auth: {
            identity: { methods: ['token'], token: { id: 'T0' } },
            scope: { project: { name: 'P', domain: { id: 'd' } } },
          },
        },
      },
    ]);
  });

  it('refuses bodies that are not JSON, too large, or without a token', async () => {
    handler = (_b, res) => {
      res.writeHead(201, { 'X-Subject-Token': 't' });
      res.end('{"token": ');
    };
    await rejects(openImageSession(cloud()), 'FERRY_KEYSTONE_RESPONSE');
    handler = (_b, res) => {
      res.writeHead(201, { 'X-Subject-Token': 't' });
      res.end(Buffer.alloc(MAX_KEYSTONE_BODY + 1024, 0x20));
    };
    await rejects(openImageSession(cloud()), 'FERRY_KEYSTONE_RESPONSE');
    handler = (_b, res) => {
      res.writeHead(201, { 'Content-Type': 'application/json' });
      res.end('{"token": {"expires_at": "2099-01-01T00:00:00Z", "catalog": []}}');
    };
    await rejects(openImageSession(cloud()), 'FERRY_KEYSTONE_RESPONSE');
    handler = (_b, res) => issue(res, 'has space');
    await rejects(openImageSession(cloud()), 'FERRY_KEYSTONE_RESPONSE');
    handler = (_b, res) => issue(res, 'ok', { expires_at: 'soon' });
    await rejects(openImageSession(cloud()), 'FERRY_KEYSTONE_RESPONSE');
    handler = (_b, res) => issue(res, 'ok', { project: { id: 7 } });
    await rejects(openImageSession(cloud()), 'FERRY_KEYSTONE_RESPONSE');
    // A token dead on arrival would have the session ask again on every request.
    handler = (_b, res) =>
      issue(res, 'ok', { issued_at: '2030-01-01T01:00:00Z', expires_at: '2030-01-01T00:00:00Z' });
    await rejects(openImageSession(cloud()), 'FERRY_KEYSTONE_RESPONSE');
  });

  it("counts the token's life from its arrival, whatever Keystone's clock says", async () => {
    // Keystone's clock a day behind ours: expires_at is already past by our clock.
    const day = 24 * 3600_000;
    let n = 0;
    handler = (_b, res) => {
      n += 1;
      const then = Date.now() - day;
      issue(res, `skewed-${n}`, {
        issued_at: new Date(then).toISOString(),
        expires_at: new Date(then + 3600_000).toISOString(),
      });
    };
    let skew = 0;
    const s = await openImageSession(cloud(), { now: () => Date.now() + skew });
    assert.equal(await s.token(), 'skewed-1');
    assert.equal(await s.token(), 'skewed-1');
    skew = 57 * 60_000;
    assert.equal(await s.token(), 'skewed-1');
    skew = 59 * 60_000;
    assert.equal(await s.token(), 'skewed-2');
    assert.equal(n, 2);
  });

  it('refuses catalogs of the wrong shape', async () => {
    for (const bad of [
      { catalog: 'none' },
      { catalog: [null] },
      { catalog: [{ type: 'image', endpoints: {} }] },
      { catalog: [{ type: 'image', endpoints: [{ interface: 'public', region_id: 'R1' }] }] },
      { catalog: Array.from({ length: 1001 }, () => ({ type: 'x', endpoints: [] })) },
      { catalog: catalog('javascript:alert(1)') },
      { catalog: catalog('http://user:pw@host/') },
    ]) {
      handler = (_b, res) => issue(res, 'ok', bad);
      await rejects(openImageSession(cloud()), 'FERRY_KEYSTONE_RESPONSE');
    }
  });

  it('says what the catalog has when it has no image service', () => {
    let e: unknown;
    try {
      findImageEndpoint([{ type: 'compute', endpoints: [] }], 'R1', 'public');
    } catch (error) {
      e = error;
    }
    assert.ok(isFerryError(e, 'FERRY_OPENSTACK_NO_ENDPOINT'));
    assert.match(e.message, /compute/);
    assert.equal(imageBaseUrl('http://h:9292/v2.1/'), 'http://h:9292');
    assert.equal(imageBaseUrl('https://h/image/v2'), 'https://h/image');
    assert.equal(imageBaseUrl('file:///etc/passwd'), null);
  });

  it('retries 503 and a closed connection, then gives up with a coded error', async () => {
    let n = 0;
    handler = (_b, res) => {
      n += 1;
      if (n === 1) {
        res.writeHead(503);
        res.end();
      } else if (n === 2) res.socket?.destroy();
      else issue(res, 'third');
    };
    const s = await openImageSession(cloud(), { retry: FAST });
    assert.equal(await s.token(), 'third');
    assert.equal(n, 3);
    handler = (_b, res) => {
      res.writeHead(503);
      res.end();
    };
    requests = [];
    const e = await rejects(openImageSession(cloud(), { retry: FAST }), 'FERRY_KEYSTONE_RESPONSE');
    assert.equal(e.details.status, 503);
    assert.equal(requests.length, FAST.maxAttempts);
  });

  it('maps 401 to FERRY_OPENSTACK_AUTH and blanks a secret Keystone quotes back', async () => {
    handler = (_b, res) => {
      res.writeHead(401, { 'Content-Type': 'application/json' });
      res.end(
        JSON.stringify({
          error: { code: 401, message: 'The request you have made requires authentication.' },
        }),
      );
    };
    const auth = await rejects(openImageSession(cloud()), 'FERRY_OPENSTACK_AUTH');
    assert.match(auth.message, /password of user "u"/);
    handler = (_b, res) => {
      res.writeHead(400, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 400, message: `'${SECRET}' is too short\u0007` } }));
    };
    const bad = await rejects(openImageSession(cloud()), 'FERRY_KEYSTONE_RESPONSE');
    assert.match(bad.message, /'\*\*\*' is too short/);
  });

  it('reports an unreachable or silent Keystone with FERRY_KEYSTONE_UNREACHABLE', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const c = cloud();
    if (c.authType !== 'password') return;
    const e = await rejects(
      openImageSession(
        { ...c, auth: { ...c.auth, authUrl: `http://127.0.0.1:${port}/v3` } },
        { retry: FAST },
      ),
      'FERRY_KEYSTONE_UNREACHABLE',
    );
    assert.equal(e.details.attempts, FAST.maxAttempts);
    handler = () => {};
    const t0 = Date.now();
    await rejects(
      openImageSession(cloud(), { retry: { ...FAST, maxAttempts: 2 }, timeoutMs: 150 }),
      'FERRY_KEYSTONE_UNREACHABLE',
    );
    assert.ok(Date.now() - t0 < 5000);
  });

  it('aborts a hanging request', async () => {
    handler = () => {};
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    await rejects(openImageSession(cloud(), { signal: ac.signal }), 'FERRY_ABORTED');
  });

  it('shares one re-auth among callers; one caller giving up does not fail the others', async () => {
    const s = await openImageSession(cloud());
    assert.equal(await s.token(), 'tok-1');
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let n = 0;
    handler = (_b, res) => {
      n += 1;
      void gate.then(() => issue(res, `again-${n}`));
    };
    s.invalidate();
    const ac = new AbortController();
    const waiting = [s.token(), s.token(ac.signal), s.token(), s.token()];
    ac.abort();
    await rejects(waiting[1]!, 'FERRY_ABORTED');
    release();
    const got = await Promise.all([waiting[0], waiting[2], waiting[3]]);
    assert.deepEqual(got, ['again-1', 'again-1', 'again-1']);
    assert.equal(n, 1);
    assert.equal(s.projectId, 'p1');
    assert.equal(s.imageUrl, 'http://127.0.0.1:9292');
  });

  it('gives an unauthenticated session for an explicit endpoint without auth', async () => {
    const s = await openImageSession({
      name: null,
      interface: 'public',
      verify: true,
      authType: 'none',
      auth: null,
      imageEndpointOverride: 'http://127.0.0.1:9292/v2/',
    });
    assert.equal(s.imageUrl, 'http://127.0.0.1:9292');
    assert.equal(s.projectId, null);
    assert.equal(await s.token(), null);
    assert.equal(requests.length, 0);
  });
});
