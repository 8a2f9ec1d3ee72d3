import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetBucketLocationCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { bucketNameProblem } from '../../src/cloud/s3/index.js';
import { send, signRequest, withCloud } from '../helpers/cloud.js';
import { OTHER_KEYS, s3Client, s3Error, sha256hex, TWO_ACCOUNTS } from '../helpers/s3.js';

describe('s3: buckets', () => {
  it('creates buckets in their LocationConstraint region and lists them per account', async () => {
    await withCloud(
      async ({ url }) => {
        const east = s3Client(url);
        const west = s3Client(url, undefined, 'eu-west-1');
        await east.send(new CreateBucketCommand({ Bucket: 'plain-bucket' }));
        await west.send(
          new CreateBucketCommand({
            Bucket: 'euro.bucket-1',
            CreateBucketConfiguration: { LocationConstraint: 'eu-west-1' },
          }),
        );
        // From us-east-1 (the global endpoint) any region may be named.
        await east.send(
          new CreateBucketCommand({
            Bucket: 'tokyo-bucket',
            CreateBucketConfiguration: { LocationConstraint: 'ap-northeast-1' },
          }),
        );
        const loc = async (b: string) =>
          (await east.send(new GetBucketLocationCommand({ Bucket: b }))).LocationConstraint;
        assert.equal(await loc('plain-bucket'), undefined);
        assert.equal(await loc('euro.bucket-1'), 'eu-west-1');
        assert.equal(await loc('tokyo-bucket'), 'ap-northeast-1');
        const head = await west.send(new HeadBucketCommand({ Bucket: 'euro.bucket-1' }));
        assert.equal(head.BucketRegion, 'eu-west-1');
        const mine = await east.send(new ListBucketsCommand({}));
        assert.deepEqual(
          mine.Buckets?.map((b) => [b.Name, b.BucketRegion]),
          [
            ['euro.bucket-1', 'eu-west-1'],
            ['plain-bucket', 'us-east-1'],
            ['tokyo-bucket', 'ap-northeast-1'],
          ],
        );
        assert.match(mine.Owner?.ID ?? '', /^[0-9a-f]{64}$/);
        const theirs = await s3Client(url, OTHER_KEYS).send(new ListBucketsCommand({}));
        assert.deepEqual(theirs.Buckets ?? [], []);
        // An object operation signed for the wrong region is told the bucket's.
        await assert.rejects(
          east.send(new ListObjectsV2Command({ Bucket: 'euro.bucket-1' })),
          s3Error('AuthorizationHeaderMalformed', 400),
        );
      },
      { config: TWO_ACCOUNTS },
    );
  });

  it('refuses bad location constraints as S3 does', async () => {
    await withCloud(async ({ url }) => {
      const east = s3Client(url);
      await assert.rejects(
        east.send(
          new CreateBucketCommand({
            Bucket: 'b-explicit-east',
            CreateBucketConfiguration: { LocationConstraint: 'us-east-1' as 'eu-west-1' },
          }),
        ),
        s3Error('InvalidLocationConstraint', 400),
      );
      await assert.rejects(
        east.send(
          new CreateBucketCommand({
            Bucket: 'b-nowhere',
            CreateBucketConfiguration: { LocationConstraint: 'mars-north-1' as 'eu-west-1' },
          }),
        ),
        s3Error('InvalidLocationConstraint', 400),
      );
      const west = s3Client(url, undefined, 'eu-west-2');
      // The SDK fills in its own region; a bare request to a regional endpoint is refused.
      const bare = await send(
        url,
        await signRequest(
          url,
          {
            method: 'PUT',
            path: '/b-unspecified',
            headers: { 'x-amz-content-sha256': sha256hex('') },
          },
          { service: 's3', region: 'eu-west-2' },
        ),
      );
      assert.equal(bare.status, 400);
      assert.match(bare.body, /<Code>IllegalLocationConstraintException<\/Code>/);
      await assert.rejects(
        west.send(
          new CreateBucketCommand({
            Bucket: 'b-elsewhere',
            CreateBucketConfiguration: { LocationConstraint: 'eu-west-1' },
          }),
        ),
        s3Error('IllegalLocationConstraintException', 400),
      );
      assert.deepEqual((await east.send(new ListBucketsCommand({}))).Buckets ?? [], []);
      await west.send(new CreateBucketCommand({ Bucket: 'b-sdk-fills-region' }));
      const loc = await west.send(new GetBucketLocationCommand({ Bucket: 'b-sdk-fills-region' }));
      assert.equal(loc.LocationConstraint, 'eu-west-2');
    });
  });

  it('validates names per the S3 rules', async () => {
    for (const bad of [
      'ab',
      'a'.repeat(64),
      'Upper-case',
      'under_score',
      '-leading',
      'trailing-',
      'two..dots',
      '192.168.1.1',
      'xn--punycode',
      'sthree-bucket',
      'bucket-s3alias',
      'bucket--ol-s3',
      'b.mrap',
    ])
      assert.notEqual(bucketNameProblem(bad), undefined, bad);
    for (const good of ['abc', 'a'.repeat(63), 'my.bucket-1', '1-2-3', 'a.b.c'])
      assert.equal(bucketNameProblem(good), undefined, good);
    await withCloud(async ({ url }) => {
      const s3 = s3Client(url);
      for (const bad of ['UPPER', 'has_underscore', '10.0.0.1', 'ends-'])
        await assert.rejects(
          s3.send(new CreateBucketCommand({ Bucket: bad })),
          s3Error('InvalidBucketName', 400),
          bad,
        );
    });
  });

  it('keeps names global: BucketAlreadyExists for another account, BucketAlreadyOwnedByYou for the owner', async () => {
    await withCloud(
      async ({ url }) => {
        const mine = s3Client(url);
        const theirs = s3Client(url, OTHER_KEYS);
        await mine.send(new CreateBucketCommand({ Bucket: 'shared-name' }));
        await assert.rejects(
          mine.send(new CreateBucketCommand({ Bucket: 'shared-name' })),
          s3Error('BucketAlreadyOwnedByYou', 409),
        );
        await assert.rejects(
          theirs.send(new CreateBucketCommand({ Bucket: 'shared-name' })),
          s3Error('BucketAlreadyExists', 409),
        );
        // Another account's bucket is AccessDenied, not NoSuchBucket, for everything.
        await mine.send(new PutObjectCommand({ Bucket: 'shared-name', Key: 'k', Body: 'secret' }));
        await assert.rejects(
          theirs.send(new GetObjectCommand({ Bucket: 'shared-name', Key: 'k' })),
          s3Error('AccessDenied', 403),
        );
        await assert.rejects(
          theirs.send(new PutObjectCommand({ Bucket: 'shared-name', Key: 'k', Body: 'x' })),
          s3Error('AccessDenied', 403),
        );
        await assert.rejects(
          theirs.send(new ListObjectsV2Command({ Bucket: 'shared-name' })),
          s3Error('AccessDenied', 403),
        );
        await assert.rejects(
          theirs.send(new DeleteBucketCommand({ Bucket: 'shared-name' })),
          s3Error('AccessDenied', 403),
        );
        await assert.rejects(
          theirs.send(new HeadBucketCommand({ Bucket: 'shared-name' })),
          (e: Error & { $metadata?: { httpStatusCode?: number } }) =>
            e.$metadata?.httpStatusCode === 403,
        );
        await assert.rejects(
          mine.send(new HeadBucketCommand({ Bucket: 'no-such-bucket-here' })),
          (e: Error & { $metadata?: { httpStatusCode?: number } }) =>
            e.$metadata?.httpStatusCode === 404,
        );
        await assert.rejects(
          mine.send(new ListObjectsV2Command({ Bucket: 'no-such-bucket-here' })),
          s3Error('NoSuchBucket', 404),
        );
        // Still the owner's, unchanged.
        const got = await mine.send(new GetObjectCommand({ Bucket: 'shared-name', Key: 'k' }));
        assert.equal(await got.Body?.transformToString(), 'secret');
      },
      { config: TWO_ACCOUNTS },
    );
  });

  it('deletes only empty buckets (objects and multipart uploads count), and the name is free again', async () => {
    await withCloud(
      async ({ url, dir }) => {
        const s3 = s3Client(url);
        await s3.send(new CreateBucketCommand({ Bucket: 'to-delete' }));
        await s3.send(new PutObjectCommand({ Bucket: 'to-delete', Key: 'o', Body: 'x' }));
        await assert.rejects(
          s3.send(new DeleteBucketCommand({ Bucket: 'to-delete' })),
          s3Error('BucketNotEmpty', 409),
        );
        await s3.send(new DeleteObjectCommand({ Bucket: 'to-delete', Key: 'o' }));
        const upload = await s3.send(
          new CreateMultipartUploadCommand({ Bucket: 'to-delete', Key: 'big' }),
        );
        await assert.rejects(
          s3.send(new DeleteBucketCommand({ Bucket: 'to-delete' })),
          s3Error('BucketNotEmpty', 409),
        );
        await s3.send(
          new AbortMultipartUploadCommand({
            Bucket: 'to-delete',
            Key: 'big',
            UploadId: upload.UploadId!,
          }),
        );
        await s3.send(new DeleteBucketCommand({ Bucket: 'to-delete' }));
        await assert.rejects(
          s3.send(new DeleteBucketCommand({ Bucket: 'to-delete' })),
          s3Error('NoSuchBucket', 404),
        );
        // Another account may now take the name.
        await s3Client(url, OTHER_KEYS).send(new CreateBucketCommand({ Bucket: 'to-delete' }));
        await assert.rejects(
          s3.send(new ListObjectsV2Command({ Bucket: 'to-delete' })),
          s3Error('AccessDenied', 403),
        );
        void dir;
      },
      { config: TWO_ACCOUNTS },
    );
  });

  it('keeps buckets and objects across a restart', async () => {
    const { withTempDir } = await import('../helpers/qemu.js');
    await withTempDir(async (dir) => {
      await withCloud(
        async ({ url }) => {
          const s3 = s3Client(url, undefined, 'eu-central-1');
          await s3.send(
            new CreateBucketCommand({
              Bucket: 'survivor',
              CreateBucketConfiguration: { LocationConstraint: 'eu-central-1' },
            }),
          );
          await s3.send(new PutObjectCommand({ Bucket: 'survivor', Key: 'a/b', Body: 'kept' }));
        },
        { dir },
      );
      await withCloud(
        async ({ url }) => {
          const s3 = s3Client(url, undefined, 'eu-central-1');
          const got = await s3.send(new GetObjectCommand({ Bucket: 'survivor', Key: 'a/b' }));
          assert.equal(await got.Body?.transformToString(), 'kept');
          const loc = await s3.send(new GetBucketLocationCommand({ Bucket: 'survivor' }));
          assert.equal(loc.LocationConstraint, 'eu-central-1');
        },
        { dir },
      );
    });
  });
});
