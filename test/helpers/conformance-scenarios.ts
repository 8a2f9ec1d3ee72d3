/**
 * Scenarios of the conformance test that need more than one service: S3's
 * operations, and VM Import end to end (a disk image put in the endpoint's
 * S3, imported, registered as an AMI in the endpoint's image registry).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import {
  CancelImportTaskCommand,
  DescribeImagesCommand,
  DescribeImportImageTasksCommand,
  DescribeImportSnapshotTasksCommand,
  DescribeInstancesCommand,
  type EC2Client,
  GetConsoleOutputCommand,
  ImportImageCommand,
  ImportSnapshotCommand,
  RunInstancesCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetBucketLocationCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListMultipartUploadsCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { makeDebianDisk } from './import-disks.js';
import { waitImage, waitSnapshot } from './vm-import.js';

/** The S3 operations the endpoint serves (S3 has no "unknown action" to ask the endpoint with). */
export const S3_IMPLEMENTED = [
  'AbortMultipartUpload',
  'CompleteMultipartUpload',
  'CopyObject',
  'CreateBucket',
  'CreateMultipartUpload',
  'DeleteBucket',
  'DeleteObject',
  'DeleteObjects',
  'GetBucketLocation',
  'GetBucketVersioning',
  'GetObject',
  'HeadBucket',
  'HeadObject',
  'ListBuckets',
  'ListMultipartUploads',
  'ListObjects',
  'ListObjectsV2',
  'ListParts',
  'PutObject',
  'UploadPart',
  'UploadPartCopy',
] as const;

async function expectError(p: Promise<unknown>, name: string): Promise<void> {
  await assert.rejects(p, (e: Error) => {
    assert.equal(e.name, name);
    return true;
  });
}

const MiB = 1024 * 1024;

export async function s3Scenario(s3: S3Client): Promise<void> {
  await s3.send(
    new CreateBucketCommand({
      Bucket: 'conformance',
      CreateBucketConfiguration: { LocationConstraint: 'eu-west-1' },
    }),
  );
  await s3.send(new CreateBucketCommand({ Bucket: 'conformance-us' }));
  await s3.send(new HeadBucketCommand({ Bucket: 'conformance-us' }));
  await s3.send(new GetBucketLocationCommand({ Bucket: 'conformance-us' }));
  await s3.send(new GetBucketVersioningCommand({ Bucket: 'conformance-us' }));
  await s3.send(new ListBucketsCommand({}));
  const b = 'conformance-us';
  await s3.send(
    new PutObjectCommand({
      Bucket: b,
      Key: 'a/one.txt',
      Body: 'one',
      ContentType: 'text/plain',
      Metadata: { colour: 'blue' },
    }),
  );
  await s3.send(new PutObjectCommand({ Bucket: b, Key: 'a/two.txt', Body: 'two' }));
  await s3.send(new HeadObjectCommand({ Bucket: b, Key: 'a/one.txt' }));
  const got = await s3.send(
    new GetObjectCommand({ Bucket: b, Key: 'a/one.txt', Range: 'bytes=1-' }),
  );
  assert.equal(await got.Body?.transformToString(), 'ne');
  await s3.send(
    new CopyObjectCommand({ Bucket: b, Key: 'b/copy.txt', CopySource: `${b}/a/one.txt` }),
  );
  await s3.send(new ListObjectsV2Command({ Bucket: b, Delimiter: '/', MaxKeys: 1 }));
  await s3.send(new ListObjectsV2Command({ Bucket: b, Prefix: 'a/' }));
  await s3.send(new ListObjectsCommand({ Bucket: b }));
  await expectError(s3.send(new GetObjectCommand({ Bucket: b, Key: 'missing' })), 'NoSuchKey');

  const up = await s3.send(new CreateMultipartUploadCommand({ Bucket: b, Key: 'big' }));
  const part1 = await s3.send(
    new UploadPartCommand({
      Bucket: b,
      Key: 'big',
      UploadId: up.UploadId,
      PartNumber: 1,
      Body: Buffer.alloc(5 * MiB, 1),
    }),
  );
  const part2 = await s3.send(
    new UploadPartCopyCommand({
      Bucket: b,
      Key: 'big',
      UploadId: up.UploadId,
      PartNumber: 2,
      CopySource: `${b}/a/two.txt`,
    }),
  );
  await s3.send(new ListPartsCommand({ Bucket: b, Key: 'big', UploadId: up.UploadId }));
  await s3.send(new ListMultipartUploadsCommand({ Bucket: b }));
  await s3.send(
    new CompleteMultipartUploadCommand({
      Bucket: b,
      Key: 'big',
      UploadId: up.UploadId,
      MultipartUpload: {
        Parts: [
          { PartNumber: 1, ETag: part1.ETag ?? '' },
          { PartNumber: 2, ETag: part2.CopyPartResult?.ETag ?? '' },
        ],
      },
    }),
  );
  const aborted = await s3.send(new CreateMultipartUploadCommand({ Bucket: b, Key: 'gone' }));
  await s3.send(
    new AbortMultipartUploadCommand({ Bucket: b, Key: 'gone', UploadId: aborted.UploadId }),
  );
  await expectError(
    s3.send(new ListPartsCommand({ Bucket: b, Key: 'gone', UploadId: aborted.UploadId })),
    'NoSuchUpload',
  );
  await expectError(s3.send(new DeleteBucketCommand({ Bucket: b })), 'BucketNotEmpty');
  await s3.send(new DeleteObjectCommand({ Bucket: b, Key: 'big' }));
  await s3.send(
    new DeleteObjectsCommand({
      Bucket: b,
      Delete: { Objects: [{ Key: 'a/one.txt' }, { Key: 'a/two.txt' }, { Key: 'b/copy.txt' }] },
    }),
  );
  await s3.send(new DeleteBucketCommand({ Bucket: b }));
}

/**
 * VM Import through the endpoint's own S3 and image registry: a Debian-like
 * disk is imported as an AMI and as a snapshot; a third task, held at
 * `held` by the test's checkpoint, is cancelled.
 */
export async function importScenario(
  s3: S3Client,
  ec2: EC2Client,
  dir: string,
  held: { reached: Promise<string>; open: () => void },
): Promise<void> {
  const disk = await readFile(await makeDebianDisk(dir));
  await s3.send(new CreateBucketCommand({ Bucket: 'imports' }));
  await s3.send(new PutObjectCommand({ Bucket: 'imports', Key: 'debian.raw', Body: disk }));
  const image = await ec2.send(
    new ImportImageCommand({
      Description: 'conformance',
      DiskContainers: [{ Format: 'raw', UserBucket: { S3Bucket: 'imports', S3Key: 'debian.raw' } }],
      TagSpecifications: [{ ResourceType: 'import-image-task', Tags: [{ Key: 'k', Value: 'v' }] }],
    }),
  );
  // The first task to reach the gate waits there until the test opens it.
  const first = await held.reached;
  assert.equal(first, image.ImportTaskId);
  const snapshot = await ec2.send(
    new ImportSnapshotCommand({
      DiskContainer: { Format: 'RAW', Url: 's3://imports/debian.raw' },
    }),
  );
  await ec2.send(new CancelImportTaskCommand({ ImportTaskId: snapshot.ImportTaskId }));
  held.open();
  const { task } = await waitImage(ec2, image.ImportTaskId ?? '');
  assert.equal(task.Status, 'completed', task.StatusMessage);
  const cancelled = await waitSnapshot(ec2, snapshot.ImportTaskId ?? '');
  assert.equal(cancelled.task.Status, 'deleted');
  await ec2.send(new DescribeImportImageTasksCommand({}));
  await ec2.send(new DescribeImportSnapshotTasksCommand({ MaxResults: 5 }));
  const images = await ec2.send(new DescribeImagesCommand({ ImageIds: [task.ImageId ?? ''] }));
  assert.equal(images.Images?.[0]?.State, 'available');
  await expectError(
    ec2.send(new CancelImportTaskCommand({ ImportTaskId: 'import-ami-0123456789abcdef0' })),
    'InvalidConversionTaskId',
  );
  await instancesScenario(ec2, task.ImageId ?? '');
}

async function waitState(ec2: EC2Client, id: string, state: string): Promise<void> {
  const end = Date.now() + 60_000;
  for (;;) {
    const r = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
    const now = r.Reservations?.[0]?.Instances?.[0]?.State?.Name;
    if (now === state) return;
    if (Date.now() > end) throw new Error(`${id} is ${now}, not ${state}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** An instance of the imported AMI (the endpoint runs without QEMU here): the state walk. */
async function instancesScenario(ec2: EC2Client, imageId: string): Promise<void> {
  const run = await ec2.send(
    new RunInstancesCommand({
      ImageId: imageId,
      InstanceType: 't3.micro',
      MinCount: 1,
      MaxCount: 1,
      TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'k', Value: 'v' }] }],
    }),
  );
  const id = run.Instances?.[0]?.InstanceId ?? '';
  await waitState(ec2, id, 'running');
  await ec2.send(
    new DescribeInstancesCommand({
      Filters: [{ Name: 'instance-state-name', Values: ['running'] }],
    }),
  );
  await ec2.send(new GetConsoleOutputCommand({ InstanceId: id }));
  await ec2.send(new StopInstancesCommand({ InstanceIds: [id] }));
  await waitState(ec2, id, 'stopped');
  await ec2.send(new StartInstancesCommand({ InstanceIds: [id] }));
  await waitState(ec2, id, 'running');
  await ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
  await expectError(
    ec2.send(new StartInstancesCommand({ InstanceIds: ['i-0123456789abcdef0'] })),
    'InvalidInstanceID.NotFound',
  );
}
