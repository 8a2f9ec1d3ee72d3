import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { publishFromConfig, TAG } from '../../src/publish/index.js';
import { haveDiskTools, makeDebianDisk } from '../helpers/import-disks.js';
import {
  ACCOUNT_A,
  awsTarget,
  makeProject,
  ownImages,
  withProjectCloud,
} from '../helpers/publish-project.js';
import { withTempDir } from '../helpers/qemu.js';

const VERSION = '0.0.0-test';
const target = awsTarget('imports', {
  endpoint: 'local',
  account: 'a',
  regions: ['us-east-1'],
  extra: '    method: vm-import\n    bucket: ferry-imports\n',
});

async function bucketKeys(url: string): Promise<string[]> {
  const s3 = new S3Client({
    endpoint: url,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: ACCOUNT_A,
  });
  try {
    const r = await s3.send(new ListObjectsV2Command({ Bucket: 'ferry-imports' }));
    return (r.Contents ?? []).map((o) => o.Key ?? '');
  } finally {
    s3.destroy();
  }
}

describe('publish: the vm-import method through ferry publish', {
  skip: haveDiskTools ? false : 'mke2fs or sfdisk missing',
}, () => {
  it('imports a disk image into an AMI, tags it, removes the upload, and a re-run finds it', async () => {
    await withTempDir(async (dir) => {
      const p = await makeProject(join(dir, 'p'), target);
      const raw = await makeDebianDisk(dir);
      const config = await p.config();
      const [out] = await publishFromConfig(config, {
        image: { path: raw, name: 'debian' },
        version: VERSION,
      });
      const r = out!.result!;
      assert.equal(r.ok, true, JSON.stringify(r.placements[0]?.error));
      const o = r.placements[0]!.outcome!;
      assert.match(o.imageId, /^ami-/);
      assert.ok(o.bytesSent > 0);
      const [again] = await publishFromConfig(config, {
        image: { path: raw, name: 'debian' },
        version: VERSION,
      });
      assert.equal(again!.result!.placements[0]!.outcome!.existing, true);
      assert.equal(again!.result!.placements[0]!.outcome!.imageId, o.imageId);
      await withProjectCloud(p.state.cloud, async (ec2, url) => {
        const images = await ownImages(ec2('a', 'us-east-1'));
        assert.equal(images.length, 1);
        assert.equal(images[0]?.Tags?.find((t) => t.Key === TAG.stream)?.Value, 'debian');
        assert.deepEqual(await bucketKeys(url), [], 'the uploaded disk is removed');
      });
    });
  });

  it("fails with AWS's words and inspect's explanation when the import is refused, and cleans up", async () => {
    await withTempDir(async (dir) => {
      // The sample tree has no OS: VM Import answers as AWS does.
      const p = await makeProject(dir, target);
      const [out] = await publishFromConfig(await p.config(), { ref: 'demo', version: VERSION });
      const placement = out!.result!.placements[0]!;
      assert.equal(placement.state, 'failed');
      assert.equal(placement.error?.code, 'FERRY_IMPORT_FAILED');
      assert.match(placement.error?.message ?? '', /Unknown OS|Missing OS files/);
      await withProjectCloud(p.state.cloud, async (ec2, url) => {
        assert.equal((await ownImages(ec2('a', 'us-east-1'))).length, 0);
        assert.deepEqual(await bucketKeys(url), []);
      });
    });
  });
});
