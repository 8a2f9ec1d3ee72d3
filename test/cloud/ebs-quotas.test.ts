/** EBS direct quotas from config.json: request rates and the pending-snapshot limit, per account and region. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EBSClient, PutSnapshotBlockCommand, StartSnapshotCommand } from '@aws-sdk/client-ebs';
import { parseCloudConfig } from '../../src/cloud/index.js';
import { isFerryError } from '../../src/errors/index.js';
import { TEST_CREDENTIALS, withCloud } from '../helpers/cloud.js';
import { block, sha256b64 } from '../helpers/ebs.js';

const config = {
  ebs: {
    pendingSnapshotLimit: 2,
    rateLimits: { PutSnapshotBlock: { perSecond: 1, burst: 3 } },
  },
};

const client = (url: string, region = 'us-east-1') =>
  new EBSClient({ endpoint: url, region, credentials: TEST_CREDENTIALS, maxAttempts: 1 });

function put(snapshotId: string, index: number) {
  const data = block(index + 100);
  return new PutSnapshotBlockCommand({
    SnapshotId: snapshotId,
    BlockIndex: index,
    BlockData: data,
    DataLength: data.length,
    Checksum: sha256b64(data),
    ChecksumAlgorithm: 'SHA256',
  });
}

describe('cloud: EBS quotas from config.json', () => {
  it('throttles PutSnapshotBlock past its rate and refuses snapshots past the pending limit', async () => {
    await withCloud(
      async ({ url, clock }) => {
        const ebs = client(url);
        const a = await ebs.send(new StartSnapshotCommand({ VolumeSize: 1 }));
        await ebs.send(new StartSnapshotCommand({ VolumeSize: 1 }));
        await assert.rejects(
          ebs.send(new StartSnapshotCommand({ VolumeSize: 1 })),
          (e: Error & { $metadata?: { httpStatusCode?: number } }) => {
            assert.equal(e.name, 'ServiceQuotaExceededException');
            assert.equal(e.$metadata?.httpStatusCode, 402);
            return true;
          },
        );
        // Another region has its own quota.
        await client(url, 'eu-west-1').send(new StartSnapshotCommand({ VolumeSize: 1 }));

        for (let i = 0; i < 3; i++) await ebs.send(put(a.SnapshotId!, i));
        await assert.rejects(
          ebs.send(put(a.SnapshotId!, 3)),
          (e: Error & { $metadata?: { httpStatusCode?: number } }) => {
            assert.equal(e.name, 'RequestThrottledException');
            assert.equal(e.$metadata?.httpStatusCode, 400);
            return true;
          },
        );
        // A second later the bucket holds one more request.
        clock.offset += 1000;
        await ebs.send(put(a.SnapshotId!, 3));
        await assert.rejects(ebs.send(put(a.SnapshotId!, 4)), {
          name: 'RequestThrottledException',
        });
      },
      { config },
    );
  });

  it('refuses malformed quotas with a coded error naming the field', () => {
    const bad = [
      { ebs: { pendingSnapshotLimit: 0 } },
      { ebs: { pendingSnapshotLimit: 1.5 } },
      { ebs: { rateLimits: { PutSnapshotBlock: { perSecond: -1 } } } },
      { ebs: { rateLimits: { PutSnapshotBlock: { perSecond: 1, burst: 0 } } } },
      { ebs: { rateLimits: { DeleteEverything: { perSecond: 1 } } } },
      { ebs: { speed: 'fast' } },
    ];
    for (const c of bad) {
      assert.throws(
        () => parseCloudConfig(JSON.stringify(c), 'config.json'),
        (e: unknown) =>
          isFerryError(e) && e.code === 'FERRY_CLOUD_CONFIG_INVALID' && /ebs/.test(e.message),
        JSON.stringify(c),
      );
    }
    const ok = parseCloudConfig(JSON.stringify(config), 'config.json');
    assert.deepEqual(ok.ebs, config.ebs);
  });
});
