import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  CompleteSnapshotCommand,
  EBSClient,
  GetSnapshotBlockCommand,
  ListChangedBlocksCommand,
  ListSnapshotBlocksCommand,
  PutSnapshotBlockCommand,
  StartSnapshotCommand,
} from '@aws-sdk/client-ebs';
import { EbsEngine, ebsService } from '../../src/cloud/ebs/index.js';
import type { CloudRequest, ServiceHandler } from '../../src/cloud/service.js';
import { block, linear, sha256, sha256b64, storedBlockAt } from '../helpers/ebs.js';

/**
 * A stand-in for the endpoint: every request becomes a CloudRequest for
 * account 000000000000 in the region of the SigV4 credential scope (no
 * signature check; the real server does that).
 */
function serve(handler: ServiceHandler): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const scope = /Credential=[^/]+\/\d{8}\/([a-z0-9-]+)\//.exec(req.headers.authorization ?? '');
      const request: CloudRequest = {
        method: req.method ?? 'GET',
        path: decodeURIComponent(url.pathname),
        query: url.searchParams,
        headers: req.headers,
        body: Buffer.concat(chunks),
        account: '000000000000',
        region: scope?.[1] ?? 'us-east-1',
        principal: 'arn:aws:iam::000000000000:root',
        requestId: randomUUID(),
      };
      handler(request).then(
        (r) => {
          res.writeHead(r.status, r.headers);
          res.end(r.body);
        },
        (error: unknown) => {
          res.writeHead(500);
          res.end(String(error));
        },
      );
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ server, url: `http://127.0.0.1:${port}` });
    });
  });
}

function client(url: string, region = 'us-east-1'): EBSClient {
  return new EBSClient({
    region,
    endpoint: url,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
  });
}

async function rejectsWith(p: Promise<unknown>, name: string, reason?: string): Promise<void> {
  await assert.rejects(p, (error: unknown) => {
    const e = error as {
      name: string;
      message: string;
      Reason?: string;
      $metadata?: { httpStatusCode?: number };
    };
    assert.equal(e.name, name, e.message);
    if (reason !== undefined) assert.equal(e.Reason, reason);
    assert.ok(
      e.message.length > 0 && e.message !== 'UnknownError',
      'the message reaches the client',
    );
    return true;
  });
}

describe('EBS direct API through @aws-sdk/client-ebs', () => {
  let dir = '';
  let engine: EbsEngine;
  let server: Server;
  let url = '';

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-test-'));
    engine = await EbsEngine.open(dir, {
      rateLimits: { GetSnapshotBlock: { perSecond: 0.001, burst: 4 } },
    });
    ({ server, url } = await serve(ebsService(engine)));
  });

  after(async () => {
    await new Promise((r) => server.close(r));
    await engine.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('uploads, completes with LINEAR, lists, reads back and diffs two snapshots', async () => {
    const ebs = client(url);
    const start = await ebs.send(
      new StartSnapshotCommand({
        VolumeSize: 1,
        Description: 'wire',
        Tags: [{ Key: 'Name', Value: 'root' }],
        Timeout: 10,
      }),
    );
    assert.match(start.SnapshotId!, /^snap-[0-9a-f]{17}$/);
    assert.equal(start.Status, 'pending');
    assert.equal(start.BlockSize, 524288);
    assert.equal(start.VolumeSize, 1);
    assert.equal(start.OwnerId, '000000000000');
    assert.ok(start.StartTime instanceof Date);
    assert.deepEqual(start.Tags, [{ Key: 'Name', Value: 'root' }]);
    const snap = start.SnapshotId!;
    const data = [block(100), block(101), block(102)];
    const indexes = [0, 5, 2047];
    for (let i = 0; i < 3; i++) {
      const put = await ebs.send(
        new PutSnapshotBlockCommand({
          SnapshotId: snap,
          BlockIndex: indexes[i]!,
          BlockData: data[i]!,
          DataLength: 524288,
          Checksum: sha256b64(data[i]!),
          ChecksumAlgorithm: 'SHA256',
          Progress: (i + 1) * 33,
        }),
      );
      assert.equal(put.Checksum, sha256b64(data[i]!));
      assert.equal(put.ChecksumAlgorithm, 'SHA256');
    }
    const done = await ebs.send(
      new CompleteSnapshotCommand({
        SnapshotId: snap,
        ChangedBlocksCount: 3,
        Checksum: linear(data),
        ChecksumAlgorithm: 'SHA256',
        ChecksumAggregationMethod: 'LINEAR',
      }),
    );
    assert.equal(done.Status, 'completed');
    const list = await ebs.send(new ListSnapshotBlocksCommand({ SnapshotId: snap }));
    assert.deepEqual(
      list.Blocks?.map((b) => b.BlockIndex),
      indexes,
    );
    assert.equal(list.VolumeSize, 1);
    assert.equal(list.BlockSize, 524288);
    assert.ok(list.ExpiryTime instanceof Date && list.ExpiryTime.getTime() > Date.now());
    assert.equal(list.NextToken, undefined);
    const got = await ebs.send(
      new GetSnapshotBlockCommand({
        SnapshotId: snap,
        BlockIndex: 5,
        BlockToken: list.Blocks![1]!.BlockToken!,
      }),
    );
    assert.equal(got.DataLength, 524288);
    assert.equal(got.Checksum, sha256b64(data[1]!));
    assert.equal(got.ChecksumAlgorithm, 'SHA256');
    assert.ok(Buffer.from(await got.BlockData!.transformToByteArray()).equals(data[1]!));

    // An incremental child: one block changed, one added.
    const child = await ebs.send(
      new StartSnapshotCommand({ VolumeSize: 1, ParentSnapshotId: snap }),
    );
    assert.equal(child.ParentSnapshotId, snap);
    const changed = [block(200), block(201)];
    for (const [i, idx] of [5, 9].entries()) {
      await ebs.send(
        new PutSnapshotBlockCommand({
          SnapshotId: child.SnapshotId!,
          BlockIndex: idx,
          BlockData: changed[i]!,
          DataLength: 524288,
          Checksum: sha256b64(changed[i]!),
          ChecksumAlgorithm: 'SHA256',
        }),
      );
    }
    await ebs.send(
      new CompleteSnapshotCommand({
        SnapshotId: child.SnapshotId!,
        ChangedBlocksCount: 2,
        Checksum: linear(changed),
        ChecksumAlgorithm: 'SHA256',
        ChecksumAggregationMethod: 'LINEAR',
      }),
    );
    const diff = await ebs.send(
      new ListChangedBlocksCommand({ FirstSnapshotId: snap, SecondSnapshotId: child.SnapshotId! }),
    );
    assert.deepEqual(
      diff.ChangedBlocks?.map((b) => b.BlockIndex),
      [5, 9],
    );
    assert.ok(diff.ChangedBlocks![0]!.FirstBlockToken && diff.ChangedBlocks![0]!.SecondBlockToken);
    assert.equal(diff.ChangedBlocks![1]!.FirstBlockToken, undefined);
    const newer = await ebs.send(
      new GetSnapshotBlockCommand({
        SnapshotId: child.SnapshotId!,
        BlockIndex: 5,
        BlockToken: diff.ChangedBlocks![0]!.SecondBlockToken!,
      }),
    );
    assert.ok(Buffer.from(await newer.BlockData!.transformToByteArray()).equals(changed[0]!));
    const childList = await ebs.send(
      new ListSnapshotBlocksCommand({ SnapshotId: child.SnapshotId! }),
    );
    assert.deepEqual(
      childList.Blocks?.map((b) => b.BlockIndex),
      [0, 5, 9, 2047],
    );
    // Throttling: GetSnapshotBlock allows a burst of 4 here, two used above.
    const token = childList.Blocks![0]!.BlockToken!;
    const get = () =>
      ebs.send(
        new GetSnapshotBlockCommand({
          SnapshotId: child.SnapshotId!,
          BlockIndex: 0,
          BlockToken: token,
        }),
      );
    await get();
    await get();
    await rejectsWith(get(), 'RequestThrottledException', 'ACCOUNT_THROTTLED');
  });

  it('surfaces the EBS exceptions by name', async () => {
    // us-west-2: its own rate-limit buckets, untouched by the test above.
    const ebs = client(url, 'us-west-2');
    const { SnapshotId } = await ebs.send(
      new StartSnapshotCommand({ VolumeSize: 1, ClientToken: 'wire-token' }),
    );
    const snap = SnapshotId!;
    const data = block(7);
    const putAt = (index: number, checksum = sha256b64(data)) =>
      ebs.send(
        new PutSnapshotBlockCommand({
          SnapshotId: snap,
          BlockIndex: index,
          BlockData: data,
          DataLength: 524288,
          Checksum: checksum,
          ChecksumAlgorithm: 'SHA256',
        }),
      );
    await rejectsWith(
      putAt(0, sha256b64(block(8))),
      'ValidationException',
      'INVALID_PARAMETER_VALUE',
    );
    await rejectsWith(putAt(2048), 'ValidationException', 'INVALID_BLOCK');
    await putAt(1);
    await rejectsWith(
      ebs.send(new CompleteSnapshotCommand({ SnapshotId: snap, ChangedBlocksCount: 2 })),
      'ValidationException',
    );
    await rejectsWith(
      ebs.send(
        new CompleteSnapshotCommand({
          SnapshotId: snap,
          ChangedBlocksCount: 1,
          Checksum: linear([block(8)]),
          ChecksumAlgorithm: 'SHA256',
          ChecksumAggregationMethod: 'LINEAR',
        }),
      ),
      'ValidationException',
    );
    const again = await ebs.send(
      new StartSnapshotCommand({ VolumeSize: 1, ClientToken: 'wire-token' }),
    );
    assert.equal(again.SnapshotId, snap, 'the same token and parameters answer the same snapshot');
    await rejectsWith(
      ebs.send(new StartSnapshotCommand({ VolumeSize: 2, ClientToken: 'wire-token' })),
      'ConflictException',
    );
    await rejectsWith(
      ebs.send(new ListSnapshotBlocksCommand({ SnapshotId: 'snap-00000000000000000' })),
      'ResourceNotFoundException',
      'SNAPSHOT_NOT_FOUND',
    );
    await rejectsWith(
      ebs.send(new ListSnapshotBlocksCommand({ SnapshotId: snap })),
      'ValidationException',
      'INVALID_SNAPSHOT_ID',
    );
    await ebs.send(new CompleteSnapshotCommand({ SnapshotId: snap, ChangedBlocksCount: 1 }));
    await rejectsWith(
      ebs.send(
        new GetSnapshotBlockCommand({ SnapshotId: snap, BlockIndex: 1, BlockToken: 'AAAA' }),
      ),
      'ValidationException',
      'INVALID_BLOCK_TOKEN',
    );
    await rejectsWith(
      ebs.send(new ListSnapshotBlocksCommand({ SnapshotId: snap, NextToken: 'bm9wZQ==' })),
      'ValidationException',
      'INVALID_PAGE_TOKEN',
    );
    // Another region of the same account is another set of snapshots.
    await rejectsWith(
      client(url, 'eu-west-1').send(new ListSnapshotBlocksCommand({ SnapshotId: snap })),
      'ResourceNotFoundException',
    );
    await rejectsWith(
      ebs.send(
        new StartSnapshotCommand({
          VolumeSize: 1,
          Encrypted: true,
          KmsKeyArn: 'arn:aws:kms:us-west-2:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab',
        }),
      ),
      'AccessDeniedException',
      'DEPENDENCY_ACCESS_DENIED',
    );
    // A block damaged on disk is refused, not served.
    const list = await ebs.send(new ListSnapshotBlocksCommand({ SnapshotId: snap }));
    const digest = sha256(data).toString('hex');
    const at = await storedBlockAt(dir, digest);
    assert.ok(at !== null);
    const fh = await open(at.path, 'r+');
    await fh.write(Buffer.alloc(4096), 0, 4096, at.offset);
    await fh.close();
    await rejectsWith(
      ebs.send(
        new GetSnapshotBlockCommand({
          SnapshotId: snap,
          BlockIndex: 1,
          BlockToken: list.Blocks![0]!.BlockToken!,
        }),
      ),
      'InternalServerException',
    );
  });
});
