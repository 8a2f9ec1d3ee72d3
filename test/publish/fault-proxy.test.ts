import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CompleteSnapshotCommand,
  EBSClient,
  ListSnapshotBlocksCommand,
  PutSnapshotBlockCommand,
  StartSnapshotCommand,
} from '@aws-sdk/client-ebs';
import { DescribeImagesCommand, DescribeRegionsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { DescribeKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import {
  CreateBucketCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import {
  type RetryEvent,
  type RetryPolicy,
  retryConfig,
  retryKind,
} from '../../src/publish/retry.js';
import { TEST_CREDENTIALS, withCloud } from '../helpers/cloud.js';
import { block, linear, sha256b64 } from '../helpers/ebs.js';
import { FaultProxy, type FaultRule } from '../helpers/fault-proxy.js';

const FAST: RetryPolicy = { maxAttempts: 4, baseMs: 5, capMs: 20, maxRetryAfterMs: 2000 };
const common = { region: 'us-east-1', credentials: TEST_CREDENTIALS };

async function withProxy(
  rules: readonly FaultRule[],
  fn: (proxy: FaultProxy, url: string) => Promise<void>,
  seed = 7,
): Promise<void> {
  await withCloud(async ({ url }) => {
    const proxy = new FaultProxy(url, rules, { seed });
    const through = await proxy.listen();
    try {
      await fn(proxy, through);
    } finally {
      await proxy.close();
    }
  });
}

async function failure(p: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try {
    await p;
  } catch (e) {
    return e as Error & Record<string, unknown>;
  }
  throw new Error('expected a failure');
}

async function putBlocks(ebs: EBSClient, snapshotId: string, blocks: Buffer[]): Promise<void> {
  for (const [i, data] of blocks.entries())
    await ebs.send(
      new PutSnapshotBlockCommand({
        SnapshotId: snapshotId,
        BlockIndex: i,
        BlockData: data,
        DataLength: data.length,
        Checksum: sha256b64(data),
        ChecksumAlgorithm: 'SHA256',
      }),
    );
}

describe('publish: fault proxy with the SDK and the local cloud', () => {
  it('a 503 on DescribeImages is EC2 XML; the SDK retries it under our policy and succeeds', async () => {
    const rules: FaultRule[] = [
      {
        match: { service: 'ec2', operation: 'DescribeImages' },
        fault: 'status',
        status: 503,
        firstN: 2,
      },
    ];
    await withProxy(rules, async (proxy, url) => {
      const events: RetryEvent[] = [];
      const ec2 = new EC2Client({
        ...common,
        endpoint: url,
        ...retryConfig(FAST, { onRetry: (e) => events.push(e) }),
      });
      const out = await ec2.send(new DescribeImagesCommand({ Owners: ['self'] }));
      assert.deepEqual(out.Images, []);
      assert.equal(out.$metadata.attempts, 3);
      assert.equal(proxy.injected(0), 2);
      assert.deepEqual(proxy.counts, [{ seen: 3, injected: 2 }]);
      assert.equal(proxy.seen('DescribeImages'), 3);
      assert.deepEqual(
        events.map((e) => e.kind),
        ['server', 'server'],
      );
      // firstN: 2 is spent: the next one goes through on its first attempt.
      const once = new EC2Client({ ...common, endpoint: url, maxAttempts: 1 });
      assert.equal((await once.send(new DescribeImagesCommand({}))).$metadata.attempts, 1);
      assert.deepEqual(proxy.counts, [{ seen: 4, injected: 2 }]);
    });
  });

  it('a status fault is decoded by each SDK as the service error it names', async () => {
    const rules: FaultRule[] = [
      { match: { operation: 'DescribeImages' }, fault: 'status', status: 503 },
      { match: { service: 'ebs', operation: 'StartSnapshot' }, fault: 'status', status: 429 },
      { match: { service: 's3', operation: 'CreateBucket' }, fault: 'status', status: 503 },
      { match: { service: 'sts' }, fault: 'status', status: 500, errorCode: 'InternalFailure' },
      { match: { service: 'kms', operation: 'DescribeKey' }, fault: 'status', status: 429 },
    ];
    await withProxy(rules, async (proxy, url) => {
      const once = { ...common, endpoint: url, maxAttempts: 1 };
      const ec2 = await failure(new EC2Client(once).send(new DescribeImagesCommand({})));
      assert.equal(ec2.name, 'Unavailable');
      assert.equal((ec2.$metadata as { httpStatusCode: number }).httpStatusCode, 503);
      const ebs = await failure(
        new EBSClient(once).send(new StartSnapshotCommand({ VolumeSize: 1 })),
      );
      assert.equal(ebs.name, 'RequestThrottledException');
      assert.equal(retryKind(ebs), 'throttling');
      const s3 = await failure(
        new S3Client({ ...once, forcePathStyle: true }).send(
          new CreateBucketCommand({ Bucket: 'faults' }),
        ),
      );
      assert.equal(s3.name, 'SlowDown');
      assert.equal(retryKind(s3), 'throttling');
      const sts = await failure(new STSClient(once).send(new GetCallerIdentityCommand({})));
      assert.equal(sts.name, 'InternalFailure');
      assert.equal(retryKind(sts), 'server');
      const kms = await failure(
        new KMSClient(once).send(new DescribeKeyCommand({ KeyId: 'alias/aws/ebs' })),
      );
      assert.equal(kms.name, 'ThrottlingException');
      assert.equal(retryKind(kms), 'throttling');
      assert.deepEqual(
        proxy.counts.map((c) => c.injected),
        [1, 1, 1, 1, 1],
      );
    });
  });

  it('matches on method and path; a 400 is not retried, a 500 is', async () => {
    const rules: FaultRule[] = [
      {
        match: { method: 'post', path: /^\/snapshots$/ },
        fault: 'status',
        status: 400,
        errorCode: 'ValidationException',
        firstN: 1,
      },
      {
        match: { method: 'POST', path: /^\/snapshots\/completion\// },
        fault: 'status',
        status: 500,
        firstN: 1,
      },
    ];
    await withProxy(rules, async (proxy, url) => {
      const ebs = new EBSClient({ ...common, endpoint: url, ...retryConfig(FAST) });
      const refused = await failure(
        ebs.send(new StartSnapshotCommand({ VolumeSize: 1, Timeout: 60 })),
      );
      assert.equal(refused.name, 'ValidationException');
      assert.equal((refused.$metadata as { attempts: number }).attempts, 1);
      const start = await ebs.send(new StartSnapshotCommand({ VolumeSize: 1, Timeout: 60 }));
      const data = [block(5)];
      await putBlocks(ebs, start.SnapshotId!, data);
      const done = await ebs.send(
        new CompleteSnapshotCommand({
          SnapshotId: start.SnapshotId!,
          ChangedBlocksCount: 1,
          Checksum: linear(data),
          ChecksumAlgorithm: 'SHA256',
          ChecksumAggregationMethod: 'LINEAR',
        }),
      );
      assert.equal(done.$metadata.attempts, 2);
      assert.deepEqual(
        proxy.requests.map((r) => [r.operation, r.rule]),
        [
          ['StartSnapshot', 0],
          ['StartSnapshot', undefined],
          ['PutSnapshotBlock', undefined],
          ['CompleteSnapshot', 1],
          ['CompleteSnapshot', undefined],
        ],
      );
    });
  });

  it('a reset before PutSnapshotBlock surfaces without retries and is retried with them', async () => {
    const rules: FaultRule[] = [
      {
        match: { service: 'ebs', operation: 'PutSnapshotBlock' },
        fault: 'reset-request',
        everyNth: 2,
      },
    ];
    await withProxy(rules, async (proxy, url) => {
      const once = new EBSClient({ ...common, endpoint: url, maxAttempts: 1 });
      const start = await once.send(new StartSnapshotCommand({ VolumeSize: 1, Timeout: 60 }));
      const data = [block(1), block(2), block(3)];
      await putBlocks(once, start.SnapshotId!, data.slice(0, 1));
      // The second PutSnapshotBlock is reset: the error is a connection error.
      const e = await failure(putBlocks(once, start.SnapshotId!, data.slice(0, 1)));
      assert.equal(retryKind(e), 'connection', `${e.name} ${String(e.code)} ${e.message}`);
      const retrying = new EBSClient({ ...common, endpoint: url, ...retryConfig(FAST) });
      await putBlocks(retrying, start.SnapshotId!, data);
      // Every second put is reset: blocks 1 and 2 of this run go twice.
      assert.equal(proxy.seen('PutSnapshotBlock'), 2 + 3 + 2);
      assert.deepEqual(proxy.counts, [{ seen: 7, injected: 3 }]);
      const done = await retrying.send(
        new CompleteSnapshotCommand({
          SnapshotId: start.SnapshotId!,
          ChangedBlocksCount: 3,
          Checksum: linear(data),
          ChecksumAlgorithm: 'SHA256',
          ChecksumAggregationMethod: 'LINEAR',
        }),
      );
      assert.equal(done.Status, 'completed');
      assert.equal(proxy.seen('StartSnapshot'), 1);
      assert.equal(proxy.seen('CompleteSnapshot'), 1);
    });
  });

  it('a lost answer to PutSnapshotBlock (the block was written) is retried and the snapshot is right', async () => {
    const rules: FaultRule[] = [
      { match: { operation: 'PutSnapshotBlock' }, fault: 'reset-response', firstN: 2 },
    ];
    await withProxy(rules, async (proxy, url) => {
      const ebs = new EBSClient({ ...common, endpoint: url, ...retryConfig(FAST) });
      const start = await ebs.send(new StartSnapshotCommand({ VolumeSize: 1, Timeout: 60 }));
      const data = [block(7), block(8)];
      await putBlocks(ebs, start.SnapshotId!, data);
      assert.equal(proxy.injected(0), 2);
      assert.equal(proxy.seen('PutSnapshotBlock'), 4);
      await ebs.send(
        new CompleteSnapshotCommand({
          SnapshotId: start.SnapshotId!,
          ChangedBlocksCount: 2,
          Checksum: linear(data),
          ChecksumAlgorithm: 'SHA256',
          ChecksumAggregationMethod: 'LINEAR',
        }),
      );
      const listed = await ebs.send(
        new ListSnapshotBlocksCommand({ SnapshotId: start.SnapshotId! }),
      );
      assert.deepEqual(
        listed.Blocks?.map((b) => b.BlockIndex),
        [0, 1],
      );
    });
  });

  it('a response cut mid-body on GetObject surfaces as an error', async () => {
    const rules: FaultRule[] = [
      {
        match: { service: 's3', operation: 'GetObject' },
        fault: 'reset-response',
        afterBytes: 1000,
        firstN: 1,
      },
    ];
    await withProxy(rules, async (proxy, url) => {
      const s3 = new S3Client({ ...common, endpoint: url, forcePathStyle: true, maxAttempts: 1 });
      await s3.send(new CreateBucketCommand({ Bucket: 'cut' }));
      const body = block(3);
      await s3.send(new PutObjectCommand({ Bucket: 'cut', Key: 'k', Body: body }));
      const read = async () => {
        const out = await s3.send(new GetObjectCommand({ Bucket: 'cut', Key: 'k' }));
        return Buffer.from(await out.Body!.transformToByteArray());
      };
      const e = await failure(read());
      assert.notEqual(e.message, 'expected a failure');
      assert.ok(retryKind(e) !== null, `a cut body is retryable: ${e.name} ${String(e.code)}`);
      assert.ok((await read()).equals(body));
      assert.equal(proxy.injected(0), 1);
      assert.equal(proxy.seen('PutObject'), 1);
      assert.equal(proxy.seen('CreateBucket'), 1);
    });
  });

  it('Retry-After is honoured, delays delay, and a seed makes probabilistic faults repeatable', async () => {
    const rules: FaultRule[] = [
      {
        match: { operation: 'DescribeImages' },
        fault: 'status',
        status: 503,
        retryAfter: '1',
        firstN: 1,
      },
      { match: { operation: 'DescribeRegions' }, fault: 'delay', delayMs: 300 },
      { match: { service: 'sts' }, fault: 'status', status: 503, probability: 0.5 },
    ];
    const patterns: boolean[][] = [];
    for (const seed of [42, 42, 43]) {
      await withProxy(
        rules,
        async (proxy, url) => {
          const ec2 = new EC2Client({ ...common, endpoint: url, ...retryConfig(FAST) });
          if (seed === 42 && patterns.length === 0) {
            let t = performance.now();
            await ec2.send(new DescribeImagesCommand({}));
            assert.ok(performance.now() - t >= 950, 'waited for Retry-After: 1');
            t = performance.now();
            const { $metadata } = await ec2.send(new DescribeRegionsCommand({}));
            assert.equal($metadata.attempts, 1);
            assert.ok(performance.now() - t >= 290, 'delayed');
          }
          const sts = new STSClient({ ...common, endpoint: url, maxAttempts: 1 });
          const pattern: boolean[] = [];
          for (let i = 0; i < 24; i++)
            pattern.push(
              await sts.send(new GetCallerIdentityCommand({})).then(
                () => true,
                () => false,
              ),
            );
          assert.equal(pattern.filter((ok) => !ok).length, proxy.injected(2));
          assert.ok(proxy.injected(2) > 0 && proxy.injected(2) < 24);
          patterns.push(pattern);
        },
        seed,
      );
    }
    assert.deepEqual(patterns[0], patterns[1], 'the same seed, the same faults');
    assert.notDeepEqual(patterns[0], patterns[2]);
  });

  it('refuses rules that cannot fire sensibly', () => {
    assert.throws(
      () => new FaultProxy('http://127.0.0.1:1', [{ match: {}, fault: 'delay', probability: 2 }]),
      RangeError,
    );
    assert.throws(
      () => new FaultProxy('http://127.0.0.1:1', [{ match: {}, fault: 'delay', everyNth: 0 }]),
      RangeError,
    );
  });
});
