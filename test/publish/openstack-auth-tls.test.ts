/**
 * Keystone over https with a private CA (made by openssl for the test): the
 * certificate is checked by default, a cloud's cacert makes it trusted, and
 * verify: false turns the check off. A certificate failure is not retried.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isFerryError } from '../../src/errors/index.js';
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
