import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { it } from 'node:test';
import { hashToken, ImageServer, LocalStore } from '../../src/store/index.js';
import { withTempDir } from '../helpers/qemu.js';

const haveOpenssl = spawnSync('sh', ['-c', 'command -v openssl']).status === 0;

/** A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl. */
function pki(dir: string): void {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  run(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=ferry test CA',
  );
  for (const who of ['server', 'client']) {
    run(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      `${who}.key`,
      '-out',
      `${who}.csr`,
      '-subj',
      `/CN=${who}`,
    );
    execFileSync('sh', ['-c', `printf 'subjectAltName=IP:127.0.0.1\\n' > ${who}.ext`], {
      cwd: dir,
    });
    run(
      'x509',
      '-req',
      '-in',
      `${who}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${who}.pem`,
      '-days',
      '2',
      '-extfile',
      `${who}.ext`,
    );
  }
}

function get(
  url: string,
  opts: { ca: Buffer; cert?: Buffer; key?: Buffer; token: string },
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}/v1/streams`,
      {
        ca: opts.ca,
        ...(opts.cert ? { cert: opts.cert, key: opts.key } : {}),
        headers: { authorization: `Bearer ${opts.token}` },
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

it('serves over HTTPS and, with a client CA, refuses clients without a certificate signed by it', {
  skip: haveOpenssl ? false : 'openssl missing',
}, async () => {
  await withTempDir(async (dir) => {
    pki(dir);
    const f = (n: string) => readFile(join(dir, n));
    const store = await LocalStore.open(join(dir, 'store'));
    const token = 'tls-read-token';
    const server = new ImageServer(store, {
      tokens: [{ name: 'r', sha256: hashToken(token), scope: 'read' }],
      tls: {
        cert: await f('server.pem'),
        key: await f('server.key'),
        ca: await f('ca.pem'),
        requireClientCert: true,
      },
    });
    const url = await server.listen();
    try {
      assert.match(url, /^https:\/\/127\.0\.0\.1:/);
      const ca = await f('ca.pem');
      assert.equal(
        await get(url, { ca, cert: await f('client.pem'), key: await f('client.key'), token }),
        200,
      );
      // Right token, no client certificate: the TLS handshake fails.
      await assert.rejects(get(url, { ca, token }));
      // Right certificate, wrong token: still refused.
      assert.equal(
        await get(url, {
          ca,
          cert: await f('client.pem'),
          key: await f('client.key'),
          token: 'nope',
        }),
        401,
      );
    } finally {
      await server.close();
    }
  });
});
