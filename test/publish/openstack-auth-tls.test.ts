/**
 * Keystone over https with a private CA (made by openssl for the test): the
 * certificate is checked by default, a cloud's cacert makes it trusted, and
 * verify: false turns the check off. A certificate failure is not retried.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { isFerryError } from '../../src/errors/index.js';
import { GlanceClient } from '../../src/publish/openstack/glance-client.js';
import type { ImageTls } from '../../src/publish/openstack/image-session.js';
import { openImageSession } from '../../src/publish/openstack/keystone-auth.js';
import type { OpenStackCloud } from '../../src/publish/openstack/openstack-cloud.js';

const haveOpenssl = spawnSync('sh', ['-c', 'command -v openssl']).status === 0;

function makeCa(dir: string): { ca: string; key: Buffer; cert: Buffer } {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run(
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '1',
    '-subj',
    '/CN=ferry test CA',
  );
  run('req', ...ec, '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  run(
    'x509',
    '-req',
    '-in',
    'srv.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'srv.pem',
    '-days',
    '1',
    '-extfile',
    'ext.cnf',
  );
  return {
    ca: join(dir, 'ca.pem'),
    key: readFileSync(join(dir, 'srv.key')),
    cert: readFileSync(join(dir, 'srv.pem')),
  };
}

describe('Keystone over https', { skip: haveOpenssl ? false : 'openssl not installed' }, () => {
  let server: https.Server;
  let url: string;
  let dir: string;
  let ca: string;
  let requests = 0;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-tls-'));
    const made = makeCa(dir);
    ca = made.ca;
    server = https.createServer({ key: made.key, cert: made.cert }, (req, res) => {
      req.resume();
      req.on('end', () => {
        requests += 1;
        res.writeHead(201, { 'Content-Type': 'application/json', 'X-Subject-Token': 'tls-token' });
        res.end(
          JSON.stringify({
            token: {
              expires_at: new Date(Date.now() + 3600_000).toISOString(),
              project: { id: 'p' },
              catalog: [
                {
                  type: 'image',
                  endpoints: [
                    { interface: 'public', region_id: 'R', url: 'https://127.0.0.1:9292' },
                  ],
                },
              ],
            },
          }),
        );
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/v3`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    await rm(dir, { recursive: true, force: true });
  });

  const cloud = (over: Partial<{ cacert: string; verify: boolean }> = {}): OpenStackCloud => ({
    name: null,
    interface: 'public',
    verify: over.verify ?? true,
    ...(over.cacert === undefined ? {} : { cacert: over.cacert }),
    authType: 'token',
    auth: { authUrl: url, token: 'start' },
  });

  it('refuses an untrusted certificate at once, without retrying', async () => {
    requests = 0;
    let caught: unknown;
    try {
      await openImageSession(cloud());
    } catch (error) {
      caught = error;
    }
    assert.ok(isFerryError(caught, 'FERRY_KEYSTONE_UNREACHABLE'), String(caught));
    assert.equal(caught.details.attempts, 1);
    assert.match(String(caught.details.code), /CERT|SIGNATURE|ISSUER/);
    assert.equal(requests, 0);
  });

  it("trusts the cloud's cacert", async () => {
    const s = await openImageSession(cloud({ cacert: ca }));
    assert.equal(await s.token(), 'tls-token');
    assert.equal(s.imageUrl, 'https://127.0.0.1:9292');
    // The image endpoint is reached with the same trust.
    assert.ok(s.tls?.ca?.equals(readFileSync(ca)));
    assert.equal(s.tls?.verify, true);
  });

  it('skips the check with verify: false', async () => {
    const s = await openImageSession(cloud({ verify: false }));
    assert.equal(await s.token(), 'tls-token');
  });

  it('says a missing cacert file with FERRY_IO', async () => {
    let caught: unknown;
    try {
      await openImageSession(cloud({ cacert: '/nonexistent/ca.pem' }));
    } catch (error) {
      caught = error;
    }
    assert.ok(isFerryError(caught, 'FERRY_IO'), String(caught));
  });
});

describe('Glance over https', { skip: haveOpenssl ? false : 'openssl not installed' }, () => {
  const ID = '6a3f1e2c-9b1d-4c47-8f0e-2d5a7b9c0e11';
  const DATA = Buffer.alloc(3 * 1024 * 1024, 7);
  let server: https.Server;
  let url: string;
  let dir: string;
  let ca: Buffer;
  let caPath: string;
  const seen: string[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-glance-tls-'));
    const made = makeCa(dir);
    caPath = made.ca;
    ca = readFileSync(made.ca);
    server = https.createServer({ key: made.key, cert: made.cert }, (req, res) => {
      seen.push(`${req.method} ${req.url}`);
      req.resume();
      req.on('end', () => {
        if (req.method === 'PUT') return void res.writeHead(204).end();
        if (req.url === `/v2/images/${ID}/file`) return void res.writeHead(200).end(DATA);
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(
          JSON.stringify({
            id: ID,
            name: 'x',
            status: 'active',
            visibility: 'shared',
            protected: false,
            tags: [],
            disk_format: 'raw',
            container_format: 'bare',
            size: DATA.length,
          }),
        );
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    await rm(dir, { recursive: true, force: true });
  });

  const client = (tls?: ImageTls) =>
    new GlanceClient({
      session: {
        imageUrl: url,
        projectId: 'p',
        token: async () => 't',
        invalidate: () => {},
        ...(tls === undefined ? {} : { tls }),
      },
    });
  const upload = (c: GlanceClient) =>
    c.uploadData(ID, { body: Readable.from([DATA]), size: DATA.length });

  it('refuses an untrusted certificate, coded and not retried, on every kind of call', async () => {
    seen.length = 0;
    const c = client();
    const refused = (e: unknown) =>
      isFerryError(e, 'FERRY_GLANCE_TLS') && /CERT|SIGNATURE|ISSUER/.test(String(e.details.errno));
    await assert.rejects(c.getImage(ID), refused);
    await assert.rejects(upload(c), refused);
    const untrusted = client({ verify: true });
    await assert.rejects(untrusted.getImage(ID), refused);
    assert.deepEqual(seen, [], 'no request got through');
    c.close();
    untrusted.close();
  });

  it("trusts the cloud's cacert for JSON calls, uploads and downloads", async () => {
    seen.length = 0;
    const c = client({ ca, verify: true });
    assert.equal((await c.getImage(ID))?.id, ID);
    await upload(c);
    const to = join(dir, 'down.raw');
    assert.equal(await c.downloadData(ID, to), DATA.length);
    assert.ok((await readFile(to)).equals(DATA));
    assert.deepEqual(seen, [
      `GET /v2/images/${ID}`,
      `PUT /v2/images/${ID}/file`,
      `GET /v2/images/${ID}`,
      `GET /v2/images/${ID}/file`,
    ]);
    c.close();
  });

  it('skips the check with verify: false', async () => {
    const c = client({ verify: false });
    assert.equal((await c.getImage(ID))?.id, ID);
    await upload(c);
    c.close();
  });

  it("an explicit endpoint without auth carries the cloud's cacert and verify", async () => {
    const s = await openImageSession({
      name: null,
      interface: 'public',
      verify: true,
      cacert: caPath,
      authType: 'none',
      auth: null,
      imageEndpointOverride: url,
    });
    assert.ok(s.tls?.ca?.equals(ca));
    assert.equal(s.tls?.verify, true);
    const c = new GlanceClient({ session: s });
    assert.equal((await c.getImage(ID))?.id, ID);
    c.close();
  });
});
