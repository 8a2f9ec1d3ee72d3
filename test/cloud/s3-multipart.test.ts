import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { withCloud } from '../helpers/cloud.js';
import { md5hex, OTHER_KEYS, pattern, s3Client, s3Error, TWO_ACCOUNTS } from '../helpers/s3.js';

const B = 'multipart-bucket';
const MiB = 1024 * 1024;

async function start(s3: S3Client, key: string, extra: Record<string, unknown> = {}) {
  const r = await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: key, ...extra }));
  assert.match(r.UploadId ?? '', /^[0-9a-f]{64}$/);
  return r.UploadId!;
}

async function part(s3: S3Client, key: string, uploadId: string, n: number, body: Buffer) {
  const r = await s3.send(
    new UploadPartCommand({ Bucket: B, Key: key, UploadId: uploadId, PartNumber: n, Body: body }),
  );
  return { PartNumber: n, ETag: r.ETag! };
}

describe('s3: multipart uploads', () => {
  it('uploads in parts and completes to an object whose ETag is the MD5 of the part MD5s', async () => {
    await withCloud(async ({ url, endpoint }) => {
      const s3 = s3Client(url);
      await s3.send(new CreateBucketCommand({ Bucket: B }));
      const parts = [pattern(5 * MiB, 1), pattern(5 * MiB, 2), pattern(1000, 3)];
      const id = await start(s3, 'big/object', {
        ContentType: 'application/x-disk',
        Metadata: { image: 'debian' },
      });
      // Out of order, and part 2 replaced: the last upload of a number wins.
      const p3 = await part(s3, 'big/object', id, 3, parts[2]!);
      await part(s3, 'big/object', id, 2, pattern(5 * MiB, 99));
      const p2 = await part(s3, 'big/object', id, 2, parts[1]!);
      const p1 = await part(s3, 'big/object', id, 1, parts[0]!);
      assert.equal(p1.ETag, `"${md5hex(parts[0]!)}"`);
      const listed = await s3.send(
        new ListPartsCommand({ Bucket: B, Key: 'big/object', UploadId: id }),
      );
      assert.deepEqual(
        listed.Parts?.map((p) => [p.PartNumber, p.ETag, p.Size]),
        [
          [1, p1.ETag, 5 * MiB],
          [2, p2.ETag, 5 * MiB],
          [3, p3.ETag, 1000],
        ],
      );
      const done = await s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: B,
          Key: 'big/object',
          UploadId: id,
          MultipartUpload: { Parts: [p1, p2, p3] },
        }),
      );
      const md5s = createHash('md5');
      for (const p of parts) md5s.update(createHash('md5').update(p).digest());
      assert.equal(done.ETag, `"${md5s.digest('hex')}-3"`);
      const got = await s3.send(new GetObjectCommand({ Bucket: B, Key: 'big/object' }));
      const body = Buffer.from(await got.Body!.transformToByteArray());
      assert.ok(body.equals(Buffer.concat(parts)));
      assert.equal(got.ETag, done.ETag);
      assert.equal(got.ContentType, 'application/x-disk');
      assert.deepEqual(got.Metadata, { image: 'debian' });
      assert.equal(got.PartsCount, 3);
      // The upload is gone.
      await assert.rejects(
        s3.send(new ListPartsCommand({ Bucket: B, Key: 'big/object', UploadId: id })),
        s3Error('NoSuchUpload', 404),
      );
      const file = await endpoint.s3.objectFile('000000000000', B, 'big/object');
      assert.equal(file?.size, 10 * MiB + 1000);
    });
  });

  it('keeps per-part checksums and a composite checksum when the upload names an algorithm', async () => {
    await withCloud(async ({ url }) => {
      const s3 = s3Client(url);
      await s3.send(new CreateBucketCommand({ Bucket: B }));
      const id = await start(s3, 'summed', { ChecksumAlgorithm: 'SHA256' });
      const data = [pattern(5 * MiB, 4), pattern(10, 5)];
      const sums = data.map((d) => createHash('sha256').update(d).digest('base64'));
      const parts = [];
      for (const [i, d] of data.entries()) {
        const r = await s3.send(
          new UploadPartCommand({
            Bucket: B,
            Key: 'summed',
            UploadId: id,
            PartNumber: i + 1,
            Body: d,
            ChecksumAlgorithm: 'SHA256',
          }),
        );
        assert.equal(r.ChecksumSHA256, sums[i]);
        parts.push({ PartNumber: i + 1, ETag: r.ETag!, ChecksumSHA256: r.ChecksumSHA256! });
      }
      // A checksum in the completion that is not the part's is InvalidPart.
      await assert.rejects(
        s3.send(
          new CompleteMultipartUploadCommand({
            Bucket: B,
            Key: 'summed',
            UploadId: id,
            MultipartUpload: {
              Parts: [parts[0]!, { ...parts[1]!, ChecksumSHA256: sums[0]! }],
            },
          }),
        ),
        s3Error('InvalidPart', 400),
      );
      const done = await s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: B,
          Key: 'summed',
          UploadId: id,
          MultipartUpload: { Parts: parts },
        }),
      );
      const composite = createHash('sha256')
        .update(Buffer.concat(sums.map((s) => Buffer.from(s, 'base64'))))
        .digest('base64');
      assert.equal(done.ChecksumSHA256, `${composite}-2`);
      const head = await s3.send(
        new HeadObjectCommand({ Bucket: B, Key: 'summed', ChecksumMode: 'ENABLED' }),
      );
      assert.equal(head.ChecksumSHA256, `${composite}-2`);
    });
  });

  it('copies parts from objects (UploadPartCopy, whole and ranged)', async () => {
    await withCloud(
      async ({ url }) => {
        const s3 = s3Client(url);
        await s3.send(new CreateBucketCommand({ Bucket: B }));
        const src = pattern(6 * MiB, 41);
        await s3.send(new PutObjectCommand({ Bucket: B, Key: 'source', Body: src }));
        const id = await start(s3, 'assembled');
        const whole = await s3.send(
          new UploadPartCopyCommand({
            Bucket: B,
            Key: 'assembled',
            UploadId: id,
            PartNumber: 1,
            CopySource: `${B}/source`,
          }),
        );
        assert.equal(whole.CopyPartResult?.ETag, `"${md5hex(src)}"`);
        const ranged = await s3.send(
          new UploadPartCopyCommand({
            Bucket: B,
            Key: 'assembled',
            UploadId: id,
            PartNumber: 2,
            CopySource: `${B}/source`,
            CopySourceRange: 'bytes=100-1099',
          }),
        );
        assert.equal(ranged.CopyPartResult?.ETag, `"${md5hex(src.subarray(100, 1100))}"`);
        await assert.rejects(
          s3.send(
            new UploadPartCopyCommand({
              Bucket: B,
              Key: 'assembled',
              UploadId: id,
              PartNumber: 3,
              CopySource: `${B}/source`,
              CopySourceRange: `bytes=0-${6 * MiB}`,
            }),
          ),
          s3Error('InvalidRequest', 400),
        );
        const theirs = s3Client(url, OTHER_KEYS);
        await theirs.send(new CreateBucketCommand({ Bucket: 'their-parts' }));
        const tid = (
          await theirs.send(new CreateMultipartUploadCommand({ Bucket: 'their-parts', Key: 'x' }))
        ).UploadId!;
        await assert.rejects(
          theirs.send(
            new UploadPartCopyCommand({
              Bucket: 'their-parts',
              Key: 'x',
              UploadId: tid,
              PartNumber: 1,
              CopySource: `${B}/source`,
            }),
          ),
          s3Error('AccessDenied', 403),
        );
        await s3.send(
          new CompleteMultipartUploadCommand({
            Bucket: B,
            Key: 'assembled',
            UploadId: id,
            MultipartUpload: {
              Parts: [
                { PartNumber: 1, ETag: whole.CopyPartResult!.ETag! },
                { PartNumber: 2, ETag: ranged.CopyPartResult!.ETag! },
              ],
            },
          }),
        );
        const got = await s3.send(new GetObjectCommand({ Bucket: B, Key: 'assembled' }));
        assert.ok(
          Buffer.from(await got.Body!.transformToByteArray()).equals(
            Buffer.concat([src, src.subarray(100, 1100)]),
          ),
        );
      },
      { config: TWO_ACCOUNTS },
    );
  });

  it('refuses bad completions: unknown or mismatched parts, wrong order, small parts', async () => {
    await withCloud(async ({ url }) => {
      const s3 = s3Client(url);
      await s3.send(new CreateBucketCommand({ Bucket: B }));
      const id = await start(s3, 'k');
      const small1 = await part(s3, 'k', id, 1, pattern(1024, 1));
      const small2 = await part(s3, 'k', id, 2, pattern(1024, 2));
      const complete = (parts: Array<{ PartNumber: number; ETag: string }>) =>
        s3.send(
          new CompleteMultipartUploadCommand({
            Bucket: B,
            Key: 'k',
            UploadId: id,
            MultipartUpload: { Parts: parts },
          }),
        );
      await assert.rejects(
        complete([small1, { PartNumber: 3, ETag: small1.ETag }]),
        s3Error('InvalidPart', 400),
      );
      await assert.rejects(
        complete([small1, { PartNumber: 2, ETag: small1.ETag }]),
        s3Error('InvalidPart', 400),
      );
      await assert.rejects(complete([small2, small1]), s3Error('InvalidPartOrder', 400));
      await assert.rejects(complete([small1, small1]), s3Error('InvalidPartOrder', 400));
      await assert.rejects(complete([small1, small2]), s3Error('EntityTooSmall', 400));
      // A single small part is a whole object (the last part may be small).
      const one = await complete([small1]);
      assert.match(one.ETag ?? '', /-1"$/);
      // ETags may come without quotes.
      const id2 = await start(s3, 'k2');
      const a = await s3.send(
        new UploadPartCommand({ Bucket: B, Key: 'k2', UploadId: id2, PartNumber: 1, Body: 'x' }),
      );
      await s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: B,
          Key: 'k2',
          UploadId: id2,
          MultipartUpload: { Parts: [{ PartNumber: 1, ETag: a.ETag!.replace(/"/g, '') }] },
        }),
      );
      await assert.rejects(
        s3.send(
          new UploadPartCommand({ Bucket: B, Key: 'k2', UploadId: id2, PartNumber: 0, Body: 'x' }),
        ),
        s3Error('InvalidArgument', 400),
      );
    });
  });

  it('answers NoSuchUpload for unknown, aborted and completed uploads, and for another key', async () => {
    await withCloud(
      async ({ url }) => {
        const s3 = s3Client(url);
        await s3.send(new CreateBucketCommand({ Bucket: B }));
        const id = await start(s3, 'abort-me');
        await part(s3, 'abort-me', id, 1, pattern(100));
        await assert.rejects(
          s3.send(new ListPartsCommand({ Bucket: B, Key: 'another-key', UploadId: id })),
          s3Error('NoSuchUpload', 404),
        );
        await assert.rejects(
          s3.send(
            new UploadPartCommand({
              Bucket: B,
              Key: 'abort-me',
              UploadId: '../../etc/passwd',
              PartNumber: 1,
              Body: 'x',
            }),
          ),
          s3Error('NoSuchUpload', 404),
        );
        // Another account's request on the bucket is AccessDenied before anything.
        await assert.rejects(
          s3Client(url, OTHER_KEYS).send(
            new AbortMultipartUploadCommand({ Bucket: B, Key: 'abort-me', UploadId: id }),
          ),
          s3Error('AccessDenied', 403),
        );
        await s3.send(
          new AbortMultipartUploadCommand({ Bucket: B, Key: 'abort-me', UploadId: id }),
        );
        await assert.rejects(
          s3.send(new AbortMultipartUploadCommand({ Bucket: B, Key: 'abort-me', UploadId: id })),
          s3Error('NoSuchUpload', 404),
        );
        await assert.rejects(
          s3.send(
            new UploadPartCommand({
              Bucket: B,
              Key: 'abort-me',
              UploadId: id,
              PartNumber: 2,
              Body: 'x',
            }),
          ),
          s3Error('NoSuchUpload', 404),
        );
        await assert.rejects(
          s3.send(
            new CompleteMultipartUploadCommand({
              Bucket: B,
              Key: 'abort-me',
              UploadId: id,
              MultipartUpload: { Parts: [{ PartNumber: 1, ETag: '"x"' }] },
            }),
          ),
          s3Error('NoSuchUpload', 404),
        );
      },
      { config: TWO_ACCOUNTS },
    );
  });

  it('pages ListParts and ListMultipartUploads (key-marker, upload-id-marker, delimiter)', async () => {
    await withCloud(async ({ url, dir }) => {
      const s3 = s3Client(url);
      await s3.send(new CreateBucketCommand({ Bucket: B }));
      const id = await start(s3, 'parts');
      for (let n = 1; n <= 7; n++) await part(s3, 'parts', id, n, Buffer.from(`part ${n}`));
      const seen: number[] = [];
      let marker: string | undefined;
      for (;;) {
        const page = await s3.send(
          new ListPartsCommand({
            Bucket: B,
            Key: 'parts',
            UploadId: id,
            MaxParts: 3,
            ...(marker === undefined ? {} : { PartNumberMarker: marker }),
          }),
        );
        seen.push(...(page.Parts ?? []).map((p) => p.PartNumber!));
        if (!page.IsTruncated) break;
        marker = page.NextPartNumberMarker;
      }
      assert.deepEqual(seen, [1, 2, 3, 4, 5, 6, 7]);

      const ids = new Map<string, string[]>();
      for (const key of ['k1', 'k1', 'k1', 'k2', 'dir/a', 'dir/b', 'parts']) {
        if (key === 'parts') continue;
        const u = await start(s3, key);
        ids.set(key, [...(ids.get(key) ?? []), u]);
      }
      const all: Array<[string, string]> = [];
      let keyMarker: string | undefined;
      let idMarker: string | undefined;
      let pagesSeen = 0;
      for (;;) {
        const page = await s3.send(
          new ListMultipartUploadsCommand({
            Bucket: B,
            MaxUploads: 2,
            ...(keyMarker === undefined ? {} : { KeyMarker: keyMarker }),
            ...(idMarker === undefined ? {} : { UploadIdMarker: idMarker }),
          }),
        );
        pagesSeen++;
        all.push(...(page.Uploads ?? []).map((u) => [u.Key!, u.UploadId!] as [string, string]));
        if (!page.IsTruncated) break;
        keyMarker = page.NextKeyMarker;
        idMarker = page.NextUploadIdMarker;
      }
      assert.equal(pagesSeen, 4);
      // By key, then in the order they were started.
      assert.deepEqual(all, [
        ['dir/a', ids.get('dir/a')![0]!],
        ['dir/b', ids.get('dir/b')![0]!],
        ...ids.get('k1')!.map((u) => ['k1', u] as [string, string]),
        ['k2', ids.get('k2')![0]!],
        ['parts', id],
      ]);
      const folded = await s3.send(new ListMultipartUploadsCommand({ Bucket: B, Delimiter: '/' }));
      assert.deepEqual(
        folded.CommonPrefixes?.map((c) => c.Prefix),
        ['dir/'],
      );
      assert.equal(folded.Uploads?.length, 5);
      const prefixed = await s3.send(new ListMultipartUploadsCommand({ Bucket: B, Prefix: 'k1' }));
      assert.equal(prefixed.Uploads?.length, 3);
      void dir;
    });
  });

  it('keeps uploads and parts across a restart', async () => {
    const { withTempDir } = await import('../helpers/qemu.js');
    await withTempDir(async (dir) => {
      let id = '';
      let p1 = { PartNumber: 1, ETag: '' };
      await withCloud(
        async ({ url }) => {
          const s3 = s3Client(url);
          await s3.send(new CreateBucketCommand({ Bucket: B }));
          id = await start(s3, 'resumed');
          p1 = await part(s3, 'resumed', id, 1, pattern(5 * MiB, 7));
        },
        { dir },
      );
      await withCloud(
        async ({ url }) => {
          const s3 = s3Client(url);
          const listed = await s3.send(
            new ListPartsCommand({ Bucket: B, Key: 'resumed', UploadId: id }),
          );
          assert.deepEqual(
            listed.Parts?.map((p) => p.ETag),
            [p1.ETag],
          );
          const p2 = await part(s3, 'resumed', id, 2, Buffer.from('tail'));
          await s3.send(
            new CompleteMultipartUploadCommand({
              Bucket: B,
              Key: 'resumed',
              UploadId: id,
              MultipartUpload: { Parts: [p1, p2] },
            }),
          );
          const head = await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'resumed' }));
          assert.equal(head.ContentLength, 5 * MiB + 4);
        },
        { dir },
      );
    });
  });
});
