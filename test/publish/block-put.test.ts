import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CompleteSnapshotCommand,
  ListSnapshotBlocksCommand,
  StartSnapshotCommand,
} from '@aws-sdk/client-ebs';
import { isThrottle, isTransient } from '../../src/publish/aws/aws-call.js';
import { awsFailure } from '../../src/publish/aws/aws-failure.js';
import { awsClients } from '../../src/publish/aws/clients.js';
import { withCloud } from '../helpers/cloud.js';
import { block, sha256b64 } from '../helpers/ebs.js';
import { testPlacement } from '../helpers/publish.js';

describe('blockPut (PutSnapshotBlock without the SDK stack)', () => {
  it('puts blocks the endpoint accepts (SigV4 checked), and fails as the SDK would', async () => {
    await withCloud(async ({ url }) => {
      const clients = awsClients(testPlacement(url), { concurrency: 2 });
      try {
        const put = clients.putBlock!;
        assert.equal(typeof put, 'function');
        const s = await clients.ebs.send(new StartSnapshotCommand({ VolumeSize: 1 }));
        const id = s.SnapshotId!;
        for (const i of [0, 5, 9]) {
          const data = block(i + 1);
          await put({ snapshotId: id, blockIndex: i, data, checksum: sha256b64(data) });
        }
        const data = block(3);
        // A wrong checksum: 400 ValidationException, not retried.
        const bad = await put({
          snapshotId: id,
          blockIndex: 1,
          data,
          checksum: sha256b64(block(4)),
        }).then(
          () => undefined,
          (e: unknown) => e,
        );
        assert.equal((bad as Error).name, 'ValidationException');
        assert.equal(
          (bad as { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode,
          400,
        );
        assert.match((bad as Error).message, /checksum/i);
        assert.equal(isTransient(bad), false);
        // A snapshot that does not exist: 404 ResourceNotFoundException.
        const missing = await put({
          snapshotId: 'snap-0123456789abcdef0',
          blockIndex: 0,
          data,
          checksum: sha256b64(data),
        }).then(
          () => undefined,
          (e: unknown) => e,
        );
        assert.equal((missing as Error).name, 'ResourceNotFoundException');
        const wrapped = awsFailure('FERRY_AWS_REQUEST', 'put a snapshot block', missing);
        assert.equal(wrapped.code, 'FERRY_AWS_REQUEST');
        assert.equal(wrapped.details.awsCode, 'ResourceNotFoundException');
        // An aborted put rejects as an abort.
        const controller = new AbortController();
        controller.abort();
        await assert.rejects(
          put({
            snapshotId: id,
            blockIndex: 2,
            data,
            checksum: sha256b64(data),
            signal: controller.signal,
          }),
          (e: Error) => e.name === 'AbortError',
        );
        await clients.ebs.send(
          new CompleteSnapshotCommand({ SnapshotId: id, ChangedBlocksCount: 3 }),
        );
        const listed = await clients.ebs.send(new ListSnapshotBlocksCommand({ SnapshotId: id }));
        assert.deepEqual(
          listed.Blocks?.map((b) => b.BlockIndex),
          [0, 5, 9],
        );
      } finally {
        clients.destroy();
      }
      // Wrong secret: refused by the signature check (403), not retried.
      const wrong = awsClients(
        testPlacement(url, {
          credentials: async () => ({ accessKeyId: 'test', secretAccessKey: 'not-test' }),
        }),
        { concurrency: 1 },
      );
      try {
        const data = block(1);
        const e = await wrong.putBlock!({
          snapshotId: 'snap-0123456789abcdef0',
          blockIndex: 0,
          data,
          checksum: sha256b64(data),
        }).then(
          () => undefined,
          (error: unknown) => error,
        );
        assert.equal(
          (e as { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode,
          403,
        );
        assert.equal(isTransient(e), false);
        assert.equal(isThrottle(e), false);
      } finally {
        wrong.destroy();
      }
    });
  });

  it('reports a refused connection as a transient failure', async () => {
    const clients = awsClients(testPlacement('http://127.0.0.1:9'), {
      concurrency: 1,
      requestTimeoutMs: 5000,
    });
    try {
      const data = block(1);
      const e = await clients.putBlock!({
        snapshotId: 'snap-0123456789abcdef0',
        blockIndex: 0,
        data,
        checksum: sha256b64(data),
      }).then(
        () => undefined,
        (error: unknown) => error,
      );
      assert.equal((e as { code?: string }).code, 'ECONNREFUSED');
      assert.equal(isTransient(e), true);
    } finally {
      clients.destroy();
    }
  });
});
