/**
 * Multipart uploads of large objects to a real S3 server (Swift's s3api),
 * with small settings: 5 MiB parts above a 5 MiB threshold.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import {
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3';
import {
  BackendReader,
  exportDirectory,
  ingestDirectory,
  LocalStore,
  localBackend,
  replicate,
  S3Store,
} from '../../src/store/index.js';
import { withTempDir } from '../helpers/qemu.js';
import { credentials, FaultyClient, settle, startSwift, swiftSkip } from '../helpers/swift.js';

const MiB = 1024 * 1024;
const multipart = { threshold: 5 * MiB, partSize: 5 * MiB };

function sha512(b: Buffer): string {
  return createHash('sha512').update(b).digest('hex');
}

/** `data` in 1 MiB chunks, as a store reads an object. */
async function* chunked(data: Buffer, signal?: AbortSignal): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += MiB) {
    signal?.throwIfAborted();
    yield data.subarray(i, i + MiB);
    await new Promise((r) => setImmediate(r));
  }
}

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(c);
  return Buffer.concat(parts);
}

describe('S3 multipart uploads on Swift s3api', { skip: swiftSkip, timeout: 300_000 }, () => {
  let endpoint = '';
  let client: S3Client;
  let newBucket: () => Promise<string>;
  before(() => {
    ({ endpoint, client, newBucket } = startSwift());
  });

  /** Keys under objects/ and the uploads left open: what a reader or gc would find. */
  const leftovers = async (bucket: string): Promise<{ objects: string[]; open: string[] }> => {
    const objects =
      (await client.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents?.map(
        (c) => c.Key!,
      ) ?? [];
    const open =
      (await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads?.map(
        (u) => u.Key!,
      ) ?? [];
    return { objects, open };
  };

  it('uploads an object above the threshold in parts, a bounded number at a time, and reads it back verified', async () => {
    const bucket = await newBucket();
    const faults = new FaultyClient(endpoint);
    const s3 = new S3Store({ url: `s3://${bucket}/p`, client: faults.client, multipart });
    const data = randomBytes(12 * MiB + 12345);
    const id = sha512(data);
    await s3.putObject(id, data.length, chunked(data));
    assert.equal(faults.count('UploadPartCommand'), 3, '5 + 5 + 2 MiB');
    assert.equal(faults.count('PutObjectCommand'), 0, 'no single-request upload');
    assert.ok(
      (faults.mostInFlight.get('UploadPartCommand') ?? 0) <= 2,
      'at most two parts in flight',
    );
    const head = await client.send(
      new HeadObjectCommand({ Bucket: bucket, Key: `p/objects/${id.slice(0, 2)}/${id.slice(2)}` }),
    );
    assert.equal(head.ContentLength, data.length);
    assert.match(head.ETag ?? '', /-3"$/, 'the server assembled three parts');
    assert.ok((await collect(s3.readObject(id))).equals(data));
    assert.deepEqual((await leftovers(bucket)).open, []);
    // A second put of an object the bucket has sends nothing.
    await s3.putObject(id, data.length, chunked(data));
    assert.equal(faults.count('UploadPartCommand'), 3);
  });

  it('carries a tree with a large file to S3 and exports it back byte for byte', async () => {
    await withTempDir(async (dir) => {
      const bucket = await newBucket();
      const s3 = new S3Store({ url: `s3://${bucket}`, endpoint, credentials, multipart });
      const local = await LocalStore.open(join(dir, 'local'));
      const src = join(dir, 'src');
      await mkdir(join(src, 'var'), { recursive: true });
      const big = randomBytes(11 * MiB);
      await writeFile(join(src, 'var/disk.img'), big);
      await writeFile(join(src, 'var/small'), 'small\n');
      const r = await ingestDirectory(local, src);
      await local.commit('big', r.revision, src);
      await replicate(localBackend(local), s3);
      const reader = new BackendReader(s3);
      const out = join(dir, 'out');
      await exportDirectory(reader, await reader.getManifest(r.revision), out);
      assert.ok((await readFile(join(out, 'var/disk.img'))).equals(big));
      assert.equal(await readFile(join(out, 'var/small'), 'utf8'), 'small\n');
    });
  });

  it('refuses bytes that do not hash to the name, or are too many, and leaves nothing behind', async () => {
    const bucket = await newBucket();
    const s3 = new S3Store({ url: `s3://${bucket}`, endpoint, credentials, multipart });
    const data = randomBytes(11 * MiB);
    const wrongName = sha512(Buffer.from('something else'));
    await assert.rejects(s3.putObject(wrongName, data.length, chunked(data)), {
      code: 'FERRY_STORE_OBJECT_CORRUPT',
    });
    const id = sha512(data);
    await assert.rejects(s3.putObject(id, data.length - MiB, chunked(data)), {
      code: 'FERRY_STORE_OBJECT_CORRUPT',
    });
    await assert.rejects(s3.putObject(id, data.length + MiB, chunked(data)), {
      code: 'FERRY_STORE_OBJECT_CORRUPT',
    });
    assert.deepEqual(await leftovers(bucket), { objects: [], open: [] });
    assert.deepEqual(await s3.missing([id, wrongName]), [id, wrongName]);
  });

  it('refuses a part damaged on the way (the server checks its Content-MD5)', async () => {
    const bucket = await newBucket();
    const faults = new FaultyClient(endpoint).damage('UploadPartCommand', 2);
    const s3 = new S3Store({ url: `s3://${bucket}`, client: faults.client, multipart });
    const data = randomBytes(12 * MiB);
    await assert.rejects(s3.putObject(sha512(data), data.length, chunked(data)), (e: Error) => {
      assert.equal((e as { code?: string }).code, 'FERRY_STORE_OBJECT_CORRUPT');
      assert.match(e.message, /part 2 arrived damaged/);
      return true;
    });
    assert.deepEqual(await leftovers(bucket), { objects: [], open: [] });
  });

  it('aborts the upload on the server when the caller aborts', async () => {
    const bucket = await newBucket();
    const faults = new FaultyClient(endpoint);
    const s3 = new S3Store({ url: `s3://${bucket}`, client: faults.client, multipart });
    const data = randomBytes(20 * MiB);
    const controller = new AbortController();
    const held = faults.pauseAt('UploadPartCommand', 2);
    const put = s3.putObject(
      sha512(data),
      data.length,
      chunked(data, controller.signal),
      controller.signal,
    );
    await held.reached;
    controller.abort();
    held.release();
    await assert.rejects(put, { code: 'FERRY_ABORTED' });
    assert.deepEqual(await leftovers(bucket), { objects: [], open: [] });
  });

  it('leaves an upload a killed process started invisible, and gc aborts it after the grace period', async () => {
    const bucket = await newBucket();
    // Dies as it is about to send part 3: parts 1 and 2 (in flight before) reach the server.
    const faults = new FaultyClient(endpoint).killAt('UploadPartCommand', 3);
    const dying = new S3Store({ url: `s3://${bucket}`, client: faults.client, multipart });
    const data = randomBytes(12 * MiB);
    const id = sha512(data);
    await assert.rejects(
      dying.putObject(id, data.length, chunked(data)),
      /killed before UploadPartCommand #3/,
    );
    const s3 = new S3Store({ url: `s3://${bucket}`, endpoint, credentials, multipart });
    assert.deepEqual(await s3.missing([id]), [id], 'no object under its name');
    assert.equal((await leftovers(bucket)).open.length, 1);
    const young = await s3.gc({ graceSeconds: 3600 });
    assert.equal(young.removedBytes, 0);
    assert.equal((await leftovers(bucket)).open.length, 1, 'within the grace period');
    await settle();
    const old = await s3.gc({ graceSeconds: 0 });
    assert.equal(old.removedBytes, 10 * MiB, 'the two parts it had sent');
    assert.deepEqual(await leftovers(bucket), { objects: [], open: [] });
  });
});
