import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { utimesSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { isFerryError } from '../../src/errors/index.js';
import {
  abortUpload,
  deleteObject,
  multipartEtag,
  type UploadProgress,
  uploadFile,
  uploadPartSize,
} from '../../src/publish/aws/s3-upload.js';
import { withCloud } from '../helpers/cloud.js';
import { memoryCheckpoint } from '../helpers/memory-checkpoint.js';
import { withTempDir } from '../helpers/qemu.js';
import { md5b64, pattern, s3Client } from '../helpers/s3.js';

const MiB = 1024 * 1024;
const PART = 5 * MiB;
/** Five parts: four of 5 MiB and a short last one. */
const SIZE = 4 * PART + 123_457;

const code = (c: string) => (e: unknown) => {
  assert.ok(isFerryError(e), String(e));
  assert.equal(e.code, c, e.message);
  return true;
};

async function objectSha(s3: S3Client, bucket: string, key: string): Promise<string> {
  const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const bytes = await r.Body!.transformToByteArray();
  return createHash('sha256').update(bytes).digest('hex');
}

async function partNumbers(s3: S3Client, key: string, uploadId: string): Promise<number[]> {
  const r = await s3.send(new ListPartsCommand({ Bucket: 'disks', Key: key, UploadId: uploadId }));
  return (r.Parts ?? []).map((p) => p.PartNumber!);
}

describe('publish: S3 multipart upload', () => {
  it('uploads in parts, resumes after an abort sending only missing or changed parts, same ETag', async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'disk.vmdk');
      const data = pattern(SIZE, 7);
      await writeFile(path, data);
      const sha = createHash('sha256').update(data).digest('hex');
      const want = await multipartEtag(path, PART);
      await withCloud(
        async ({ url }) => {
          const s3 = s3Client(url);
          // A straight upload, creating the bucket.
          const straight = memoryCheckpoint<{ uploadId: string }>();
          const progress: UploadProgress[] = [];
          const a = await uploadFile(s3, {
            bucket: 'disks',
            key: 'straight.vmdk',
            path,
            partSize: PART,
            concurrency: 3,
            createBucket: true,
            checkpoint: straight.checkpoint,
            onProgress: (p) => progress.push(p),
          });
          assert.equal(a.etag, want);
          assert.match(a.etag, /^"[0-9a-f]{32}-5"$/);
          assert.deepEqual([a.bytes, a.partsSent, a.partsReused], [SIZE, 5, 0]);
          assert.equal(straight.saves.length, 1);
          assert.equal(straight.saves[0]!.uploadId, a.uploadId);
          assert.equal(progress.at(-1)?.sentBytes, SIZE);
          assert.equal(await objectSha(s3, 'disks', 'straight.vmdk'), sha);

          // Aborted after two parts (one worker: nothing else is in flight).
          const cp = memoryCheckpoint<{ uploadId: string }>();
          const stop = new AbortController();
          await assert.rejects(
            uploadFile(s3, {
              bucket: 'disks',
              key: 'resumed.vmdk',
              path,
              partSize: PART,
              concurrency: 1,
              checkpoint: cp.checkpoint,
              signal: stop.signal,
              onProgress: (p) => {
                if (p.partsSent === 2) stop.abort();
              },
            }),
            code('FERRY_ABORTED'),
          );
          const uploadId = cp.value()!.uploadId;
          assert.deepEqual(await partNumbers(s3, 'resumed.vmdk', uploadId), [1, 2]);
          // Part 2 is replaced by other bytes of the same size: its ETag no longer matches.
          const other = pattern(PART, 99);
          await s3.send(
            new UploadPartCommand({
              Bucket: 'disks',
              Key: 'resumed.vmdk',
              UploadId: uploadId,
              PartNumber: 2,
              Body: other,
              ContentMD5: md5b64(other),
            }),
          );
          const sent: number[] = [];
          const b = await uploadFile(s3, {
            bucket: 'disks',
            key: 'resumed.vmdk',
            path,
            partSize: PART,
            concurrency: 2,
            checkpoint: cp.checkpoint,
            onProgress: (p) => sent.push(p.partsSent),
          });
          assert.equal(b.uploadId, uploadId, 'the checkpointed upload is resumed, not a new one');
          assert.equal(cp.saves.length, 1);
          assert.deepEqual([b.partsReused, b.partsSent], [1, 4]);
          assert.equal(b.etag, a.etag);
          assert.equal(await objectSha(s3, 'disks', 'resumed.vmdk'), sha);

          // A resume after the upload completed (the answer lost): nothing is sent again.
          const c = await uploadFile(s3, {
            bucket: 'disks',
            key: 'resumed.vmdk',
            path,
            partSize: PART,
            checkpoint: cp.checkpoint,
          });
          assert.deepEqual([c.partsSent, c.partsReused, c.etag], [0, 5, a.etag]);

          // A checkpointed upload S3 no longer has: a new one is started and saved.
          const gone = memoryCheckpoint({ uploadId: 'no-such-upload' });
          const d = await uploadFile(s3, {
            bucket: 'disks',
            key: 'fresh.vmdk',
            path,
            partSize: PART,
            checkpoint: gone.checkpoint,
          });
          assert.notEqual(d.uploadId, 'no-such-upload');
          assert.deepEqual(gone.saves, [{ uploadId: d.uploadId }]);
          assert.deepEqual([d.partsSent, d.etag], [5, a.etag]);
        },
        { extra: { vmImport: false } },
      );
    });
  });

  it('cleans up: abortUpload drops an open upload, deleteObject removes the object (twice is fine)', async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'small.raw');
      await writeFile(path, pattern(MiB, 3));
      await withCloud(
        async ({ url }) => {
          const s3 = s3Client(url);
          const r = await uploadFile(s3, {
            bucket: 'disks',
            key: 'small.raw',
            path,
            createBucket: true,
            checkpoint: memoryCheckpoint<{ uploadId: string }>().checkpoint,
          });
          // One part smaller than 5 MiB: the whole file.
          assert.deepEqual([r.partsSent, r.bytes], [1, MiB]);
          await deleteObject(s3, 'disks', 'small.raw');
          await assert.rejects(
            s3.send(new HeadObjectCommand({ Bucket: 'disks', Key: 'small.raw' })),
            { name: 'NotFound' },
          );
          await deleteObject(s3, 'disks', 'small.raw');
          const open = await s3.send(
            new CreateMultipartUploadCommand({ Bucket: 'disks', Key: 'left.raw' }),
          );
          await abortUpload(s3, 'disks', 'left.raw', open.UploadId!);
          const list = await s3.send(new ListMultipartUploadsCommand({ Bucket: 'disks' }));
          assert.deepEqual(list.Uploads ?? [], []);
          await abortUpload(s3, 'disks', 'left.raw', open.UploadId!);
        },
        { extra: { vmImport: false } },
      );
    });
  });

  it('refuses bad input with coded errors', async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'disk.raw');
      await writeFile(path, pattern(MiB, 5));
      const empty = join(dir, 'empty.raw');
      await writeFile(empty, '');
      await withCloud(
        async ({ url }) => {
          const s3 = s3Client(url);
          const base = {
            bucket: 'disks',
            key: 'k',
            path,
            checkpoint: memoryCheckpoint<{ uploadId: string }>().checkpoint,
          };
          await assert.rejects(uploadFile(s3, { ...base, partSize: MiB }), code('FERRY_USAGE'));
          await assert.rejects(uploadFile(s3, { ...base, concurrency: 0 }), code('FERRY_USAGE'));
          await assert.rejects(uploadFile(s3, { ...base, path: empty }), code('FERRY_USAGE'));
          await assert.rejects(
            uploadFile(s3, { ...base, path: join(dir, 'missing') }),
            code('FERRY_IO'),
          );
          // The file changes while it is sent.
          const changing = join(dir, 'changing.raw');
          await writeFile(changing, pattern(PART + MiB, 8));
          await assert.rejects(
            uploadFile(s3, {
              ...base,
              bucket: 'made',
              createBucket: true,
              path: changing,
              checkpoint: memoryCheckpoint<{ uploadId: string }>().checkpoint,
              partSize: PART,
              concurrency: 1,
              onProgress: (p) => {
                if (p.partsSent === 1)
                  utimesSync(changing, new Date(), new Date(Date.now() + 5000));
              },
            }),
            code('FERRY_UPLOAD_SOURCE_CHANGED'),
          );
          // No bucket and createBucket not set: S3's NoSuchBucket, coded.
          await assert.rejects(uploadFile(s3, base), (e: unknown) => {
            code('FERRY_UPLOAD_FAILED')(e);
            assert.equal((e as { details: { awsCode: string } }).details.awsCode, 'NoSuchBucket');
            return true;
          });
        },
        { extra: { vmImport: false } },
      );
    });
  });

  it('grows the part size to stay within 10,000 parts', () => {
    assert.equal(uploadPartSize(100 * MiB), 64 * MiB);
    assert.equal(uploadPartSize(100 * MiB, 8 * MiB), 8 * MiB);
    const big = 10_000 * 64 * MiB + 1;
    const grown = uploadPartSize(big);
    assert.ok(grown > 64 * MiB && grown % MiB === 0);
    assert.ok(Math.ceil(big / grown) <= 10_000);
    assert.throws(() => uploadPartSize(6 * 1024 * 1024 * MiB), code('FERRY_NOT_CAPABLE'));
  });
});
