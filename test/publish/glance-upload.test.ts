import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { isFerryError } from '../../src/errors/index.js';
import type { GlanceClient } from '../../src/publish/openstack/glance-client.js';
import { copyToStores, uploadImageData } from '../../src/publish/openstack/glance-upload.js';
import { ADMIN, glanceSkip, startGlance, type TestGlance } from '../helpers/glance.js';
import { TcpFaultProxy } from '../helpers/tcp-fault-proxy.js';

const run = randomBytes(6).toString('hex');
const SIZE = 4 * 1024 * 1024 + 123;
const FAST = { baseMs: 20, capMs: 100, maxAttempts: 3 };

describe('publish: Glance uploads against a real Glance', { skip: glanceSkip }, () => {
  let glance: TestGlance;
  let client: GlanceClient;
  let dir: string;
  let file: string;
  let sha512: string;
  let proxy: TcpFaultProxy;
  let proxied: GlanceClient;
  let web: Server;
  let webUrl: string;
  const created: string[] = [];

  before(async () => {
    glance = startGlance();
    client = glance.client();
    dir = mkdtempSync(join(tmpdir(), 'ferry-glance-'));
    file = join(dir, 'disk.raw');
    writeFileSync(file, randomBytes(SIZE));
    // The reference: coreutils, not node's crypto.
    sha512 = execFileSync('sha512sum', [file], { encoding: 'utf8' }).split(' ')[0] ?? '';
    proxy = await TcpFaultProxy.start(glance.url);
    proxied = glance.client({}, { url: proxy.url });
    web = createServer((req, res) => {
      if (req.url !== '/disk.raw') {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, {
        'Content-Length': String(SIZE),
        'Content-Type': 'application/octet-stream',
      });
      createReadStream(file).pipe(res);
    });
    await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
    webUrl = `http://127.0.0.1:${(web.address() as AddressInfo).port}`;
  });
  after(async () => {
    for (const id of created) await client.deleteImage(id).catch(() => {});
    client.close();
    proxied.close();
    await proxy.close();
    await new Promise<void>((r) => web.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  async function newImage(): Promise<string> {
    const image = await client.createImage({
      name: `ferry-upload-${run}`,
      disk_format: 'raw',
      container_format: 'bare',
      properties: { ferry_test_run: run },
    });
    created.push(image.id);
    return image.id;
  }
  const open = () => createReadStream(file, { highWaterMark: 1024 * 1024 });

  it('PUT /file: the hash computed while streaming is sha512sum and Glance agrees', async () => {
    const id = await newImage();
    let last = 0;
    const result = await uploadImageData(client, id, {
      open,
      size: SIZE,
      method: 'put',
      onProgress: (p) => {
        assert.ok(p.sent >= last);
        last = p.sent;
      },
    });
    assert.equal(result.sha512, sha512);
    assert.equal(result.method, 'put');
    assert.equal(result.attempts, 1);
    assert.equal(result.image.status, 'active');
    assert.equal(result.image.os_hash_algo, 'sha512');
    assert.equal(result.image.os_hash_value, sha512);
    assert.equal(result.image.size, SIZE);
    assert.equal(last, SIZE);
    assert.deepEqual(result.image.stores, ['fast']);

    // Again, to the active image: the same data is success without a send…
    const again = await uploadImageData(client, id, { open, size: SIZE, sha512, method: 'put' });
    assert.equal(again.attempts, 0);
    // …other data is Glance's 409 state, coded, and the good image stays.
    await assert.rejects(
      uploadImageData(client, id, { open, size: SIZE, sha512: 'a'.repeat(128), method: 'put' }),
      (e) => isFerryError(e, 'FERRY_GLANCE_CONFLICT'),
    );
    // A raw send: Glance answers 409 and closes without reading the body, so
    // the answer is read, or lost with the reset (then the send is a coded
    // broken connection, never a raw socket error).
    await assert.rejects(
      client.uploadData(id, { body: open(), size: SIZE }),
      (e) =>
        (isFerryError(e, 'FERRY_GLANCE_CONFLICT') && e.details.status === 409) ||
        (isFerryError(e, 'FERRY_GLANCE_REQUEST') &&
          (e.details.errno === 'EPIPE' || e.details.errno === 'ECONNRESET') &&
          Number(e.details.sent) < SIZE),
    );
    assert.equal((await client.getImage(id))?.status, 'active');
  });

  it('glance-direct: stage then import into the second store', async () => {
    const id = await newImage();
    const result = await uploadImageData(client, id, {
      open,
      size: SIZE,
      method: 'glance-direct',
      stores: ['slow'],
    });
    assert.equal(result.method, 'glance-direct');
    assert.equal(result.image.os_hash_value, sha512);
    assert.deepEqual(result.image.stores, ['slow']);
    // auto with stores named: an import, not PUT /file (which knows one store).
    const auto = await uploadImageData(client, await newImage(), {
      open,
      size: SIZE,
      stores: ['slow'],
    });
    assert.equal(auto.method, 'glance-direct');
    assert.deepEqual(auto.image.stores, ['slow']);
    await assert.rejects(
      uploadImageData(client, await newImage(), {
        open,
        size: SIZE,
        method: 'glance-direct',
        stores: ['nowhere'],
      }),
      (e) => isFerryError(e, 'FERRY_GLANCE_UNSUPPORTED'),
    );
  });

  it('web-download from a loopback HTTP server, verified by the given sha512', async () => {
    const id = await newImage();
    const result = await uploadImageData(client, id, {
      size: SIZE,
      sha512,
      method: { method: 'web-download', uri: `${webUrl}/disk.raw` },
    });
    assert.equal(result.method, 'web-download');
    assert.equal(result.image.os_hash_value, sha512);
    // A URL that fails: Glance marks the import failed; the image is deleted.
    const bad = await newImage();
    await assert.rejects(
      uploadImageData(client, bad, {
        size: SIZE,
        sha512,
        method: { method: 'web-download', uri: `${webUrl}/missing` },
        pollMs: 100,
      }),
      (e) => isFerryError(e, 'FERRY_GLANCE_IMAGE_FAILED') && e.details.deleted === true,
    );
    assert.equal(await client.getImage(bad), null);
  });

  it('copy-image to the second store: refused to a member, done as admin', async () => {
    const id = await newImage();
    await uploadImageData(client, id, { open, size: SIZE, method: 'put' });
    await assert.rejects(copyToStores(client, id, ['slow']), (e) =>
      isFerryError(e, 'FERRY_GLANCE_FORBIDDEN'),
    );
    const admin = glance.client(ADMIN);
    try {
      const copy = await copyToStores(admin, id, ['fast', 'slow'], { pollMs: 100 });
      assert.deepEqual(copy.present, ['fast']);
      assert.deepEqual(copy.copied, ['slow']);
      assert.deepEqual([...copy.image.stores].sort(), ['fast', 'slow']);
      assert.equal(copy.image.os_hash_value, sha512);
      const noop = await copyToStores(admin, id, ['slow']);
      assert.deepEqual(noop.copied, []);
    } finally {
      admin.close();
    }
  });

  it('an upload reset after 1 MiB is sent again and succeeds', async () => {
    const id = await newImage();
    proxy.inject({ kind: 'reset', afterBytes: 1024 * 1024, times: 1 });
    const injected = proxy.injected;
    const result = await uploadImageData(proxied, id, {
      open,
      size: SIZE,
      method: 'put',
      retries: 2,
      backoff: FAST,
    });
    assert.equal(proxy.injected - injected, 1);
    assert.equal(result.attempts, 2);
    assert.equal(result.image.os_hash_value, sha512);
  });

  it('a glance-direct stage reset after 1 MiB is staged again, then imported', async () => {
    const id = await newImage();
    proxy.inject({ kind: 'reset', afterBytes: 1024 * 1024, times: 1 });
    const injected = proxy.injected;
    const result = await uploadImageData(proxied, id, {
      open,
      size: SIZE,
      method: 'glance-direct',
      retries: 1,
      backoff: FAST,
    });
    assert.equal(proxy.injected - injected, 1);
    assert.equal(result.attempts, 2);
    assert.equal(result.image.os_hash_value, sha512);
    proxy.inject();
  });

  it('an upload reset with no retries left: the image is deleted, coded', async () => {
    const id = await newImage();
    proxy.inject({ kind: 'reset', afterBytes: 512 * 1024, times: 10 });
    const injected = proxy.injected;
    await assert.rejects(
      uploadImageData(proxied, id, { open, size: SIZE, method: 'put', retries: 1, backoff: FAST }),
      (e) =>
        isFerryError(e, 'FERRY_GLANCE_UPLOAD_FAILED') &&
        e.details.deleted === true &&
        e.details.attempts === 2,
    );
    assert.equal(proxy.injected - injected, 2);
    assert.equal(await client.getImage(id), null);
    proxy.inject();
  });

  it('a byte flipped on the way: os_hash_value differs, the image is deleted', async () => {
    const id = await newImage();
    proxy.inject({ kind: 'flip', afterBytes: 3 * 1024 * 1024 + 7, times: 1 });
    await assert.rejects(
      uploadImageData(proxied, id, { open, size: SIZE, method: 'put' }),
      (e) =>
        isFerryError(e, 'FERRY_GLANCE_HASH_MISMATCH') &&
        e.details.deleted === true &&
        e.details.local === sha512 &&
        e.details.remote !== sha512,
    );
    assert.equal(await client.getImage(id), null);
    proxy.inject();
  });

  it('a source that differs from the given sha512, or is short, deletes the image', async () => {
    const changed = await newImage();
    await assert.rejects(
      uploadImageData(client, changed, {
        open,
        size: SIZE,
        sha512: createHash('sha512').update('x').digest('hex'),
      }),
      (e) => isFerryError(e, 'FERRY_GLANCE_HASH_MISMATCH') && e.details.deleted === true,
    );
    assert.equal(await client.getImage(changed), null);
    const short = await newImage();
    await assert.rejects(
      uploadImageData(client, short, { open, size: SIZE + 1, method: 'put' }),
      (e) => isFerryError(e, 'FERRY_GLANCE_HASH_MISMATCH') && e.details.deleted === true,
    );
    assert.equal(await client.getImage(short), null);
  });

  it('an abort mid-upload deletes the image (FERRY_ABORTED)', async () => {
    const id = await newImage();
    const controller = new AbortController();
    const chunk = Buffer.alloc(64 * 1024, 7);
    let produced = 0;
    const slow = () =>
      new Readable({
        read() {
          if (produced >= SIZE) return void this.push(null);
          produced += chunk.length;
          if (produced > 1024 * 1024) controller.abort();
          setTimeout(() => this.push(chunk), 2);
        },
      });
    await assert.rejects(
      uploadImageData(client, id, {
        open: slow,
        size: SIZE,
        method: 'put',
        signal: controller.signal,
      }),
      (e) => isFerryError(e, 'FERRY_ABORTED') && e.details.deleted === true,
    );
    assert.equal(await client.getImage(id), null);
  });
});
