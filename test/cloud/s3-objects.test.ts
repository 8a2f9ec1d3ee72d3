import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { send, signRequest, withCloud } from '../helpers/cloud.js';
import {
  md5b64,
  md5hex,
  OTHER_KEYS,
  pattern,
  s3Client,
  s3Error,
  sha256hex,
  TWO_ACCOUNTS,
} from '../helpers/s3.js';

const B = 'objects-bucket';

async function exists(s3: ReturnType<typeof s3Client>, bucket: string, key: string) {
  try {
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch (e) {
    if ((e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404)
      return false;
    throw e;
  }
}

describe('s3: objects', () => {
  it('puts and gets objects with metadata, content type, MD5 ETag and checksums', async () => {
    await withCloud(async ({ url, endpoint }) => {
      const s3 = s3Client(url);
      await s3.send(new CreateBucketCommand({ Bucket: B }));
      const data = pattern(300_000);
      const key = 'dir/ünïcode key with spaces+plus&amp?.bin';
      const put = await s3.send(
        new PutObjectCommand({
          Bucket: B,
          Key: key,
          Body: data,
          ContentType: 'application/x-test',
          ContentDisposition: 'attachment; filename="x.bin"',
          CacheControl: 'no-cache',
          Metadata: { owner: 'ferry', 'mixed-case': 'Value With Spaces' },
          ChecksumAlgorithm: 'SHA256',
        }),
      );
      assert.equal(put.ETag, `"${md5hex(data)}"`);
      const got = await s3.send(
        new GetObjectCommand({ Bucket: B, Key: key, ChecksumMode: 'ENABLED' }),
      );
      const body = Buffer.from(await got.Body!.transformToByteArray());
      assert.ok(body.equals(data));
      assert.equal(got.ContentType, 'application/x-test');
      assert.equal(got.ContentDisposition, 'attachment; filename="x.bin"');
      assert.equal(got.CacheControl, 'no-cache');
      assert.equal(got.ContentLength, data.length);
      assert.deepEqual(got.Metadata, { owner: 'ferry', 'mixed-case': 'Value With Spaces' });
      assert.equal(
        got.ChecksumSHA256,
        (await import('node:crypto')).createHash('sha256').update(data).digest('base64'),
      );
      const head = await s3.send(new HeadObjectCommand({ Bucket: B, Key: key }));
      assert.equal(head.ETag, put.ETag);
      assert.equal(head.ContentLength, data.length);
      // The same object as a local file, for the endpoint's other components.
      const file = await endpoint.s3.objectFile('000000000000', B, key);
      assert.equal(file?.size, data.length);
      assert.equal(file?.etag, put.ETag);
      const { readFile } = await import('node:fs/promises');
      assert.ok((await readFile(file!.path)).equals(data));
      assert.equal(await endpoint.s3.objectFile('000000000000', B, 'absent'), undefined);
      assert.equal(await endpoint.s3.objectFile('000000000000', 'no-bucket-x', key), undefined);
      // An empty object.
      await s3.send(new PutObjectCommand({ Bucket: B, Key: 'empty', Body: '' }));
      const empty = await s3.send(new GetObjectCommand({ Bucket: B, Key: 'empty' }));
      assert.equal((await empty.Body!.transformToByteArray()).length, 0);
      assert.equal(empty.ETag, `"${md5hex('')}"`);
    });
  });

  it('serves ranges (206, Content-Range) and refuses one past the end (416 InvalidRange)', async () => {
    await withCloud(async ({ url }) => {
      const s3 = s3Client(url);
      await s3.send(new CreateBucketCommand({ Bucket: B }));
      const data = pattern(10_000);
      await s3.send(new PutObjectCommand({ Bucket: B, Key: 'r', Body: data }));
      const range = async (r: string) => {
        const got = await s3.send(new GetObjectCommand({ Bucket: B, Key: 'r', Range: r }));
        return {
          body: Buffer.from(await got.Body!.transformToByteArray()),
          range: got.ContentRange,
          length: got.ContentLength,
          status: got.$metadata.httpStatusCode,
        };
      };
      let r = await range('bytes=100-199');
      assert.equal(r.status, 206);
      assert.equal(r.range, 'bytes 100-199/10000');
      assert.ok(r.body.equals(data.subarray(100, 200)));
      r = await range('bytes=9990-');
      assert.ok(r.body.equals(data.subarray(9990)));
      r = await range('bytes=-10');
      assert.ok(r.body.equals(data.subarray(9990)));
      assert.equal(r.range, 'bytes 9990-9999/10000');
      r = await range('bytes=9000-20000');
      assert.equal(r.range, 'bytes 9000-9999/10000');
      assert.equal(r.length, 1000);
      await assert.rejects(range('bytes=10000-10005'), s3Error('InvalidRange', 416));
      // A header S3 ignores: the whole object.
      r = await range('lines=1-2');
      assert.equal(r.status, 200);
      assert.equal(r.body.length, 10_000);
    });
  });

  it('honours If-Match, If-None-Match and If-Modified-Since', async () => {
    await withCloud(async ({ url }) => {
      const s3 = s3Client(url);
      await s3.send(new CreateBucketCommand({ Bucket: B }));
      const put = await s3.send(new PutObjectCommand({ Bucket: B, Key: 'c', Body: 'cond' }));
      const ok = await s3.send(new GetObjectCommand({ Bucket: B, Key: 'c', IfMatch: put.ETag }));
      assert.equal(await ok.Body!.transformToString(), 'cond');
      await assert.rejects(
        s3.send(new GetObjectCommand({ Bucket: B, Key: 'c', IfMatch: '"0000"' })),
        s3Error('PreconditionFailed', 412),
      );
      await assert.rejects(
        s3.send(new GetObjectCommand({ Bucket: B, Key: 'c', IfNoneMatch: put.ETag })),
        (e: Error & { $metadata?: { httpStatusCode?: number } }) =>
          e.$metadata?.httpStatusCode === 304,
      );
      await assert.rejects(
        s3.send(
          new GetObjectCommand({
            Bucket: B,
            Key: 'c',
            IfModifiedSince: new Date(Date.now() + 3_600_000),
          }),
        ),
        (e: Error & { $metadata?: { httpStatusCode?: number } }) =>
          e.$metadata?.httpStatusCode === 304,
      );
      const newer = await s3.send(
        new GetObjectCommand({ Bucket: B, Key: 'c', IfModifiedSince: new Date(0) }),
      );
      assert.equal(await newer.Body!.transformToString(), 'cond');
      // If-None-Match: * on a write: only when absent.
      await assert.rejects(
        s3.send(new PutObjectCommand({ Bucket: B, Key: 'c', Body: 'again', IfNoneMatch: '*' })),
        s3Error('PreconditionFailed', 412),
      );
      await s3.send(new PutObjectCommand({ Bucket: B, Key: 'c2', Body: 'new', IfNoneMatch: '*' }));
    });
  });

  it('checks Content-MD5, x-amz-checksum-crc32/crc32c/sha256 and the payload SHA-256', async () => {
    await withCloud(async ({ url }) => {
      const s3 = s3Client(url);
      await s3.send(new CreateBucketCommand({ Bucket: B }));
      await assert.rejects(
        s3.send(
          new PutObjectCommand({
            Bucket: B,
            Key: 'md5',
            Body: 'data',
            ContentMD5: md5b64('other'),
          }),
        ),
        s3Error('BadDigest', 400),
      );
      await s3.send(
        new PutObjectCommand({ Bucket: B, Key: 'md5', Body: 'data', ContentMD5: md5b64('data') }),
      );
      for (const [field, wrong] of [
        ['ChecksumCRC32', 'AAAAAA=='],
        ['ChecksumCRC32C', 'AAAAAA=='],
        ['ChecksumSHA256', Buffer.alloc(32).toString('base64')],
      ] as const) {
        await assert.rejects(
          s3.send(
            new PutObjectCommand({ Bucket: B, Key: `sum-${field}`, Body: 'x', [field]: wrong }),
          ),
          s3Error('BadDigest', 400),
          field,
        );
        assert.equal(await exists(s3, B, `sum-${field}`), false);
      }
      for (const alg of ['CRC32', 'CRC32C', 'SHA256', 'SHA1'] as const) {
        const r = await s3.send(
          new PutObjectCommand({ Bucket: B, Key: `ok-${alg}`, Body: 'x', ChecksumAlgorithm: alg }),
        );
        assert.ok(r.ETag);
      }
      await assert.rejects(
        s3.send(
          new PutObjectCommand({ Bucket: B, Key: 'bad-b64', Body: 'x', ChecksumCRC32: 'nope' }),
        ),
        s3Error('InvalidRequest', 400),
      );
      // A body that is not what x-amz-content-sha256 declared never becomes visible.
      const signed = await signRequest(
        url,
        {
          method: 'PUT',
          path: `/${B}/sha`,
          headers: { 'x-amz-content-sha256': sha256hex('declared body') },
          body: 'another body!',
        },
        { service: 's3' },
      );
      const res = await send(url, signed);
      assert.equal(res.status, 400);
      assert.match(res.body, /<Code>XAmzContentSHA256Mismatch<\/Code>/);
      assert.equal(await exists(s3, B, 'sha'), false);
      const good = await send(
        url,
        await signRequest(
          url,
          {
            method: 'PUT',
            path: `/${B}/sha`,
            headers: { 'x-amz-content-sha256': sha256hex('declared body') },
            body: 'declared body',
          },
          { service: 's3' },
        ),
      );
      assert.equal(good.status, 200);
      assert.equal(good.headers.etag, `"${md5hex('declared body')}"`);
      // Keys are capped at 1024 bytes of UTF-8.
      await assert.rejects(
        s3.send(new PutObjectCommand({ Bucket: B, Key: 'é'.repeat(513), Body: 'x' })),
        s3Error('KeyTooLongError', 400),
      );
      await s3.send(new PutObjectCommand({ Bucket: B, Key: 'k'.repeat(1024), Body: 'x' }));
    });
  });

  it('deletes objects one at a time and in batches (Quiet), absent keys included', async () => {
    await withCloud(async ({ url }) => {
      const s3 = s3Client(url);
      await s3.send(new CreateBucketCommand({ Bucket: B }));
      for (const k of ['a', 'b', 'c', 'd'])
        await s3.send(new PutObjectCommand({ Bucket: B, Key: k, Body: k }));
      await s3.send(new DeleteObjectCommand({ Bucket: B, Key: 'a' }));
      await s3.send(new DeleteObjectCommand({ Bucket: B, Key: 'never-existed' }));
      assert.equal(await exists(s3, B, 'a'), false);
      await assert.rejects(
        s3.send(new GetObjectCommand({ Bucket: B, Key: 'a' })),
        s3Error('NoSuchKey', 404),
      );
      const loud = await s3.send(
        new DeleteObjectsCommand({
          Bucket: B,
          Delete: { Objects: [{ Key: 'b' }, { Key: 'zzz' }] },
        }),
      );
      assert.deepEqual(
        loud.Deleted?.map((d) => d.Key),
        ['b', 'zzz'],
      );
      const quiet = await s3.send(
        new DeleteObjectsCommand({
          Bucket: B,
          Delete: { Objects: [{ Key: 'c' }, { Key: 'd' }], Quiet: true },
        }),
      );
      assert.equal(quiet.Deleted, undefined);
      assert.equal(quiet.Errors, undefined);
      for (const k of ['b', 'c', 'd']) assert.equal(await exists(s3, B, k), false);
      // 1001 keys is more than one request may delete.
      await assert.rejects(
        s3.send(
          new DeleteObjectsCommand({
            Bucket: B,
            Delete: { Objects: Array.from({ length: 1001 }, (_, i) => ({ Key: `k${i}` })) },
          }),
        ),
        s3Error('MalformedXML', 400),
      );
    });
  });

  it('copies within and across buckets of an account, with COPY and REPLACE metadata', async () => {
    await withCloud(
      async ({ url }) => {
        const s3 = s3Client(url);
        await s3.send(new CreateBucketCommand({ Bucket: B }));
        await s3.send(new CreateBucketCommand({ Bucket: 'copy-target' }));
        const data = pattern(50_000);
        const put = await s3.send(
          new PutObjectCommand({
            Bucket: B,
            Key: 'src key/ü',
            Body: data,
            ContentType: 'text/x-src',
            Metadata: { from: 'source' },
          }),
        );
        const copied = await s3.send(
          new CopyObjectCommand({
            Bucket: 'copy-target',
            Key: 'dst',
            CopySource: `${B}/${encodeURIComponent('src key/ü')}`,
          }),
        );
        assert.equal(copied.CopyObjectResult?.ETag, put.ETag);
        const a = await s3.send(new GetObjectCommand({ Bucket: 'copy-target', Key: 'dst' }));
        assert.ok(Buffer.from(await a.Body!.transformToByteArray()).equals(data));
        assert.equal(a.ContentType, 'text/x-src');
        assert.deepEqual(a.Metadata, { from: 'source' });
        await s3.send(
          new CopyObjectCommand({
            Bucket: B,
            Key: 'replaced',
            CopySource: `/${B}/${encodeURIComponent('src key/ü')}`,
            MetadataDirective: 'REPLACE',
            ContentType: 'text/x-new',
            Metadata: { fresh: 'yes' },
          }),
        );
        const b = await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'replaced' }));
        assert.equal(b.ContentType, 'text/x-new');
        assert.deepEqual(b.Metadata, { fresh: 'yes' });
        assert.equal(b.ContentLength, data.length);
        // Onto itself only with new metadata.
        await assert.rejects(
          s3.send(
            new CopyObjectCommand({ Bucket: B, Key: 'replaced', CopySource: `${B}/replaced` }),
          ),
          s3Error('InvalidRequest', 400),
        );
        await s3.send(
          new CopyObjectCommand({
            Bucket: B,
            Key: 'replaced',
            CopySource: `${B}/replaced`,
            MetadataDirective: 'REPLACE',
            Metadata: { again: '1' },
          }),
        );
        await assert.rejects(
          s3.send(new CopyObjectCommand({ Bucket: B, Key: 'x', CopySource: `${B}/absent` })),
          s3Error('NoSuchKey', 404),
        );
        await assert.rejects(
          s3.send(new CopyObjectCommand({ Bucket: B, Key: 'x', CopySource: 'no-such-src/absent' })),
          s3Error('NoSuchBucket', 404),
        );
        // Another account can neither read the source nor write the target.
        const other = s3Client(url, OTHER_KEYS);
        await other.send(new CreateBucketCommand({ Bucket: 'their-bucket' }));
        await assert.rejects(
          other.send(
            new CopyObjectCommand({
              Bucket: 'their-bucket',
              Key: 'stolen',
              CopySource: `${B}/replaced`,
            }),
          ),
          s3Error('AccessDenied', 403),
        );
        await assert.rejects(
          s3.send(
            new CopyObjectCommand({
              Bucket: 'their-bucket',
              Key: 'pushed',
              CopySource: `${B}/replaced`,
            }),
          ),
          s3Error('AccessDenied', 403),
        );
      },
      { config: TWO_ACCOUNTS },
    );
  });

  it('accepts presigned URLs (GET and PUT with plain fetch) until they expire', async () => {
    await withCloud(async ({ url, clock }) => {
      const s3 = s3Client(url);
      await s3.send(new CreateBucketCommand({ Bucket: B }));
      const putUrl = await getSignedUrl(
        s3,
        new PutObjectCommand({ Bucket: B, Key: 'pre/signed' }),
        {
          expiresIn: 300,
        },
      );
      const put = await fetch(putUrl, { method: 'PUT', body: 'uploaded by fetch' });
      assert.equal(put.status, 200);
      assert.equal(put.headers.get('etag'), `"${md5hex('uploaded by fetch')}"`);
      const getUrl = await getSignedUrl(
        s3,
        new GetObjectCommand({ Bucket: B, Key: 'pre/signed' }),
        {
          expiresIn: 60,
        },
      );
      const got = await fetch(getUrl);
      assert.equal(got.status, 200);
      assert.equal(await got.text(), 'uploaded by fetch');
      const ranged = await fetch(getUrl, { headers: { range: 'bytes=0-7' } });
      assert.equal(ranged.status, 206);
      assert.equal(await ranged.text(), 'uploaded');
      // A tampered URL is refused.
      const tampered = await fetch(getUrl.replace('pre/signed', 'pre/other'));
      assert.equal(tampered.status, 403);
      assert.match(await tampered.text(), /<Code>SignatureDoesNotMatch<\/Code>/);
      // Two minutes later the one-minute URL has expired.
      clock.offset = 120_000;
      const late = await fetch(getUrl);
      assert.equal(late.status, 403);
      const text = await late.text();
      assert.match(text, /<Code>AccessDenied<\/Code>/);
      assert.match(text, /Request has expired/);
    });
  });
});
