import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it, mock } from 'node:test';
import {
  CompleteSnapshotCommand,
  GetSnapshotBlockCommand,
  ListSnapshotBlocksCommand,
  PutSnapshotBlockCommand,
  StartSnapshotCommand,
} from '@aws-sdk/client-ebs';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { awsClients, ebsSendOptions } from '../../src/publish/aws/clients.js';
import { withCloud } from '../helpers/cloud.js';
import { block, sha256b64 } from '../helpers/ebs.js';
import { testPlacement } from '../helpers/publish.js';

describe('awsClients', () => {
  it('sends PutSnapshotBlock as UNSIGNED-PAYLOAD (the SDK would hash the body), and the endpoint accepts it', async () => {
    await withCloud(async ({ url }) => {
      for (const unsignedBlocks of [true, false]) {
        const clients = awsClients(testPlacement(url), { concurrency: 2, unsignedBlocks });
        const seen: string[] = [];
        clients.ebs.middlewareStack.add(
          (next, context) => async (args) => {
            const headers = (args.request as { headers: Record<string, string> }).headers;
            if (context.commandName === 'PutSnapshotBlockCommand')
              seen.push(headers['x-amz-content-sha256']!);
            return next(args);
          },
          { step: 'deserialize', name: 'capture' },
        );
        try {
          const who = await clients.sts.send(new GetCallerIdentityCommand({}));
          assert.equal(who.Account, '000000000000');
          const s = await clients.ebs.send(new StartSnapshotCommand({ VolumeSize: 1 }));
          const data = block(7);
          const r = await clients.ebs.send(
            new PutSnapshotBlockCommand({
              SnapshotId: s.SnapshotId!,
              BlockIndex: 3,
              BlockData: data,
              DataLength: data.length,
              Checksum: sha256b64(data),
              ChecksumAlgorithm: 'SHA256',
            }),
          );
          assert.equal(r.Checksum, sha256b64(data));
          assert.equal(seen.length, 1);
          if (unsignedBlocks) assert.equal(seen[0], 'UNSIGNED-PAYLOAD');
          else assert.match(seen[0]!, /^[0-9a-f]{64}$/);
        } finally {
          clients.destroy();
        }
      }
    });
  });

  it('resolves the EBS middleware once for concurrent puts, and each put stores its own bytes', async () => {
    await withCloud(async ({ url }) => {
      const controller = new AbortController();
      const clients = awsClients(testPlacement(url), {
        concurrency: 16,
        signal: controller.signal,
      });
      const resolved = mock.method(PutSnapshotBlockCommand.prototype, 'resolveMiddleware');
      try {
        const s = await clients.ebs.send(new StartSnapshotCommand({ VolumeSize: 1 }));
        const id = s.SnapshotId!;
        const blocks = Array.from({ length: 24 }, (_, i) => block(100 + i));
        const answers = await Promise.all(
          blocks.map((data, i) =>
            clients.ebs.send(
              new PutSnapshotBlockCommand({
                SnapshotId: id,
                BlockIndex: i,
                BlockData: data,
                DataLength: data.length,
                Checksum: sha256b64(data),
                ChecksumAlgorithm: 'SHA256',
              }),
              ebsSendOptions(clients, controller.signal),
            ),
          ),
        );
        assert.equal(resolved.mock.callCount(), 1, 'one resolution for all puts');
        for (const [i, a] of answers.entries()) {
          assert.equal(a.Checksum, sha256b64(blocks[i]!), `block ${i}`);
        }
        await clients.ebs.send(
          new CompleteSnapshotCommand({ SnapshotId: id, ChangedBlocksCount: 24 }),
        );
        const listed = await clients.ebs.send(new ListSnapshotBlocksCommand({ SnapshotId: id }));
        assert.equal(listed.Blocks?.length, 24);
        for (const b of listed.Blocks ?? []) {
          const got = await clients.ebs.send(
            new GetSnapshotBlockCommand({
              SnapshotId: id,
              BlockIndex: b.BlockIndex!,
              BlockToken: b.BlockToken!,
            }),
          );
          const bytes = Buffer.from(await got.BlockData!.transformToByteArray());
          assert.ok(bytes.equals(blocks[b.BlockIndex!]!), `block ${b.BlockIndex} read back`);
        }
      } finally {
        resolved.mock.restore();
        clients.destroy();
      }
    });
  });

  it('aborts EBS requests in flight with the signal it was made with, and with the call signal', async () => {
    // A server that takes requests and never answers.
    const hung: Server = createServer(() => {});
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(hung.address() as AddressInfo).port}`;
    try {
      for (const own of [false, true]) {
        const bound = new AbortController();
        const call = new AbortController();
        const clients = awsClients(testPlacement(url), { concurrency: 2, signal: bound.signal });
        try {
          const data = block(1);
          const options = ebsSendOptions(clients, own ? call.signal : bound.signal);
          assert.equal(options === undefined, !own);
          const put = clients.ebs.send(
            new PutSnapshotBlockCommand({
              SnapshotId: 'snap-0123456789abcdef0',
              BlockIndex: 0,
              BlockData: data,
              DataLength: data.length,
              Checksum: sha256b64(data),
              ChecksumAlgorithm: 'SHA256',
            }),
            options,
          );
          const started = Date.now();
          setTimeout(() => (own ? call : bound).abort(), 100);
          await assert.rejects(put, (error: Error) => error.name === 'AbortError');
          assert.ok(Date.now() - started < 10_000, 'aborted, not timed out');
        } finally {
          clients.destroy();
        }
      }
    } finally {
      hung.closeAllConnections();
      await new Promise<void>((resolve) => hung.close(() => resolve()));
    }
  });
});
