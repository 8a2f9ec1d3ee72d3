import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CompleteSnapshotCommand,
  EBSClient,
  GetSnapshotBlockCommand,
  ListSnapshotBlocksCommand,
  PutSnapshotBlockCommand,
  StartSnapshotCommand,
} from '@aws-sdk/client-ebs';
import { CreateKeyCommand, DescribeKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { TEST_CREDENTIALS, withCloud } from '../helpers/cloud.js';
import { block, linear, sha256b64 } from '../helpers/ebs.js';

const OTHER = '222222222222';
const OTHER_KEY = { accessKeyId: 'AKIAOTHEREBS0001', secretAccessKey: 'ebs-secret' };
const config = { accounts: [{ id: OTHER, ...OTHER_KEY }] };

const ebsClient = (
  url: string,
  credentials: { accessKeyId: string; secretAccessKey: string } = TEST_CREDENTIALS,
  region = 'us-east-1',
) => new EBSClient({ endpoint: url, region, credentials, maxAttempts: 1 });

describe('EBS direct through the endpoint (SigV4, accounts, KMS)', () => {
  it('uploads an encrypted snapshot with the default key, and reads it back', async () => {
    await withCloud(
      async ({ url }) => {
        const ebs = ebsClient(url);
        const start = await ebs.send(
          new StartSnapshotCommand({ VolumeSize: 1, Encrypted: true, Timeout: 60 }),
        );
        // The key is the account's alias/aws/ebs key, as KMS itself describes it.
        const kms = new KMSClient({
          endpoint: url,
          region: 'us-east-1',
          credentials: TEST_CREDENTIALS,
        });
        const key = await kms.send(new DescribeKeyCommand({ KeyId: 'alias/aws/ebs' }));
        assert.equal(start.KmsKeyArn, key.KeyMetadata!.Arn);
        const data = [block(1), block(2)];
        for (const [i, d] of data.entries())
          await ebs.send(
            new PutSnapshotBlockCommand({
              SnapshotId: start.SnapshotId!,
              BlockIndex: i * 10,
              BlockData: d,
              DataLength: d.length,
              Checksum: sha256b64(d),
              ChecksumAlgorithm: 'SHA256',
            }),
          );
        const done = await ebs.send(
          new CompleteSnapshotCommand({
            SnapshotId: start.SnapshotId!,
            ChangedBlocksCount: 2,
            Checksum: linear(data),
            ChecksumAlgorithm: 'SHA256',
            ChecksumAggregationMethod: 'LINEAR',
          }),
        );
        assert.equal(done.Status, 'completed');
        const list = await ebs.send(
          new ListSnapshotBlocksCommand({ SnapshotId: start.SnapshotId! }),
        );
        assert.deepEqual(
          list.Blocks?.map((b) => b.BlockIndex),
          [0, 10],
        );
        const got = await ebs.send(
          new GetSnapshotBlockCommand({
            SnapshotId: start.SnapshotId!,
            BlockIndex: 10,
            BlockToken: list.Blocks![1]!.BlockToken!,
          }),
        );
        assert.ok(Buffer.from(await got.BlockData!.transformToByteArray()).equals(data[1]!));
        // Another account sees none of it.
        await assert.rejects(
          ebsClient(url, OTHER_KEY).send(
            new ListSnapshotBlocksCommand({ SnapshotId: start.SnapshotId! }),
          ),
          { name: 'ResourceNotFoundException' },
        );
      },
      { config },
    );
  });

  it('refuses a bad signature, and a key of another account that was not shared', async () => {
    await withCloud(
      async ({ url }) => {
        await assert.rejects(
          ebsClient(url, { accessKeyId: 'test', secretAccessKey: 'wrong' }).send(
            new StartSnapshotCommand({ VolumeSize: 1 }),
          ),
          (e: Error & { $metadata?: { httpStatusCode?: number } }) =>
            e.$metadata?.httpStatusCode === 403,
        );
        const theirs = await new KMSClient({
          endpoint: url,
          region: 'us-east-1',
          credentials: OTHER_KEY,
        }).send(new CreateKeyCommand({}));
        await assert.rejects(
          ebsClient(url).send(
            new StartSnapshotCommand({
              VolumeSize: 1,
              Encrypted: true,
              KmsKeyArn: theirs.KeyMetadata!.Arn!,
            }),
          ),
          { name: 'AccessDeniedException' },
        );
        // Its own account may use it.
        const ok = await ebsClient(url, OTHER_KEY).send(
          new StartSnapshotCommand({
            VolumeSize: 1,
            Encrypted: true,
            KmsKeyArn: theirs.KeyMetadata!.Arn!,
          }),
        );
        assert.equal(ok.KmsKeyArn, theirs.KeyMetadata!.Arn);
      },
      { config },
    );
  });
});
