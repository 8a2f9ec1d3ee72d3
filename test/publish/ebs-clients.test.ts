import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PutSnapshotBlockCommand, StartSnapshotCommand } from '@aws-sdk/client-ebs';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { awsClients } from '../../src/publish/aws/clients.js';
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
});
