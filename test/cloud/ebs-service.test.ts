import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { it } from 'node:test';
import { EbsEngine, ebsService } from '../../src/cloud/ebs/index.js';
import type { CloudRequest, CloudResponse } from '../../src/cloud/service.js';
import { block, linear, sha256b64 } from '../helpers/ebs.js';
import { withTempDir } from '../helpers/qemu.js';

function request(
  method: string,
  path: string,
  init: { query?: string; headers?: IncomingHttpHeaders; body?: Buffer | string } = {},
): CloudRequest {
  return {
    method,
    path,
    query: new URLSearchParams(init.query ?? ''),
    headers: init.headers ?? {},
    body: typeof init.body === 'string' ? Buffer.from(init.body) : (init.body ?? Buffer.alloc(0)),
    account: '000000000000',
    region: 'us-east-1',
    principal: 'arn:aws:iam::000000000000:root',
    requestId: 'req-1',
  };
}

function json(r: CloudResponse): Record<string, unknown> {
  return JSON.parse(r.body?.toString() ?? '{}') as Record<string, unknown>;
}

function assertError(r: CloudResponse, status: number, name: string, reason?: string): void {
  assert.equal(r.status, status, r.body?.toString());
  assert.equal(r.headers['x-amzn-ErrorType'], name);
  const doc = json(r);
  assert.equal(typeof doc.message, 'string');
  if (reason !== undefined) assert.equal(doc.Reason, reason);
}

it('maps the REST-JSON bindings and encodes errors with the model statuses', async () => {
  await withTempDir(async (dir) => {
    const engine = await EbsEngine.open(dir, { pendingSnapshotLimit: 2 });
    const ebs = ebsService(engine);
    try {
      const started = await ebs(
        request('POST', '/snapshots', {
          body: JSON.stringify({
            VolumeSize: 1,
            ClientToken: 't1',
            Tags: [{ Key: 'a', Value: 'b' }],
          }),
        }),
      );
      assert.equal(started.status, 201);
      const s = json(started);
      assert.equal(s.Status, 'pending');
      assert.equal(s.BlockSize, 524288);
      assert.equal(typeof s.StartTime, 'number');
      assert.deepEqual(s.Tags, [{ Key: 'a', Value: 'b' }]);
      const id = s.SnapshotId as string;
      const data = block(1);
      const headers = {
        'x-amz-data-length': '524288',
        'x-amz-checksum': sha256b64(data),
        'x-amz-checksum-algorithm': 'SHA256',
        'x-amz-progress': '50',
      };
      const put = await ebs(request('PUT', `/snapshots/${id}/blocks/3`, { headers, body: data }));
      assert.equal(put.status, 201);
      assert.equal(put.headers['x-amz-Checksum'], sha256b64(data));
      assertError(
        await ebs(request('PUT', `/snapshots/${id}/blocks/x`, { headers, body: data })),
        400,
        'ValidationException',
        'INVALID_BLOCK',
      );
      assertError(
        await ebs(
          request('PUT', `/snapshots/${id}/blocks/4`, {
            headers: { ...headers, 'x-amz-data-length': 'many' },
            body: data,
          }),
        ),
        400,
        'ValidationException',
      );
      assertError(
        await ebs(request('POST', `/snapshots/completion/${id}`)),
        400,
        'ValidationException',
      );
      assertError(
        await ebs(
          request('POST', '/snapshots', {
            body: JSON.stringify({ VolumeSize: 2, ClientToken: 't1' }),
          }),
        ),
        409,
        'ConflictException',
      );
      await ebs(request('POST', '/snapshots', { body: JSON.stringify({ VolumeSize: 1 }) }));
      assertError(
        await ebs(request('POST', '/snapshots', { body: JSON.stringify({ VolumeSize: 1 }) })),
        402,
        'ServiceQuotaExceededException',
      );
      assertError(
        await ebs(request('POST', '/snapshots', { body: '{' })),
        400,
        'ValidationException',
      );
      assertError(
        await ebs(request('GET', '/snapshots/snap-0123456789abcdef0/blocks')),
        404,
        'ResourceNotFoundException',
        'SNAPSHOT_NOT_FOUND',
      );
      assertError(
        await ebs(request('DELETE', `/snapshots/${id}`)),
        404,
        'UnknownOperationException',
      );
      const done = await ebs(
        request('POST', `/snapshots/completion/${id}`, {
          headers: {
            'x-amz-changedblockscount': '1',
            'x-amz-checksum': linear([data]),
            'x-amz-checksum-algorithm': 'SHA256',
            'x-amz-checksum-aggregation-method': 'LINEAR',
          },
        }),
      );
      assert.equal(done.status, 202);
      assert.deepEqual(json(done), { Status: 'completed' });
      const list = await ebs(
        request('GET', `/snapshots/${id}/blocks`, { query: 'maxResults=100' }),
      );
      assert.equal(list.status, 200);
      const blocks = json(list).Blocks as Array<{ BlockIndex: number; BlockToken: string }>;
      assert.deepEqual(
        blocks.map((b) => b.BlockIndex),
        [3],
      );
      assert.equal(json(list).NextToken, undefined);
      const got = await ebs(
        request('GET', `/snapshots/${id}/blocks/3`, {
          query: new URLSearchParams({ blockToken: blocks[0]!.BlockToken }).toString(),
        }),
      );
      assert.equal(got.status, 200);
      assert.equal(got.headers['x-amz-Data-Length'], '524288');
      assert.equal(got.headers['x-amz-Checksum-Algorithm'], 'SHA256');
      assert.ok(got.body?.equals(data));
      const changed = await ebs(request('GET', `/snapshots/${id}/changedblocks`));
      assert.deepEqual(
        (json(changed).ChangedBlocks as Array<{ BlockIndex: number }>).map((b) => b.BlockIndex),
        [3],
      );
      assertError(
        await ebs(request('GET', `/snapshots/${id}/blocks/3`)),
        400,
        'ValidationException',
      );
    } finally {
      await engine.close();
    }
  });
});
