import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CreateTagsCommand } from '@aws-sdk/client-ec2';
import { readDigests, writeDigests } from '../../src/publish/block-digests.js';
import { contentHashOf, ZERO_BLOCK_SHA256 } from '../../src/publish/digest-table.js';
import { publishFromConfig, TAG, verifyPublished } from '../../src/publish/index.js';
import { awsTarget, makeProject, ownImages, withProjectCloud } from '../helpers/publish-project.js';
import { withTempDir } from '../helpers/qemu.js';

const VERSION = '0.0.0-test';

describe('ferry verify: a published image read back', () => {
  it('is ok as published, reports the blocks that differ from altered digests, and names a missing image or digests by code', async () => {
    await withTempDir(async (dir) => {
      const p = await makeProject(
        dir,
        awsTarget('a', { endpoint: 'local', account: 'a', regions: ['us-east-1', 'eu-west-1'] }),
      );
      const config = await p.config();
      const [out] = await publishFromConfig(config, { ref: 'demo', version: VERSION });
      assert.equal(out?.result?.ok, true);
      const revision = out!.result!.request.revision!;
      const hash = out!.result!.contentHash;

      // A unique prefix is enough with a local store.
      const good = await verifyPublished(config, { ref: `demo@${revision.slice(0, 10)}` });
      assert.equal(good.revision, revision);
      assert.equal(good.ok, true, JSON.stringify(good.placements));
      assert.deepEqual(
        good.placements.map((x) => [x.key, x.status]),
        [
          ['a/us-east-1', 'ok'],
          ['a/eu-west-1', 'ok'],
        ],
      );
      assert.ok(good.placements.every((x) => (x.result?.blocks ?? 0) > 0));
      assert.equal(good.placements[0]!.contentHash, hash);
      // The placements are read back at once; one at a time when asked.
      const lag = (r: typeof good) => {
        const [x, y] = r.placements as [(typeof r.placements)[0], (typeof r.placements)[0]];
        return { lag: Date.parse(y.started) - Date.parse(x.started), first: x.seconds * 1000 };
      };
      const together = lag(good);
      assert.ok(together.lag < together.first / 2, JSON.stringify(together));
      const serial = await verifyPublished(config, {
        ref: `demo@${revision}`,
        placementsAtOnce: 1,
      });
      assert.equal(serial.ok, true);
      const oneByOne = lag(serial);
      assert.ok(oneByOne.lag >= oneByOne.first - 2, JSON.stringify(oneByOne));
      await assert.rejects(
        verifyPublished(config, { ref: `demo@${revision}`, placementsAtOnce: 0 }),
        (e: unknown) => (e as { code?: string }).code === 'FERRY_USAGE',
      );

      // Digests that say otherwise about two blocks: one data block changed,
      // one hole claimed to hold data. Saved under their own content hash,
      // which the us-east-1 image is retagged with.
      const file = await readDigests(join(p.state.digests, `${hash}.json`));
      const digests = new Map(file.digests);
      const dataBlock = [...digests].find(([, d]) => d !== ZERO_BLOCK_SHA256)![0];
      digests.set(dataBlock, createHash('sha256').update('not this block').digest('base64'));
      let hole = 0;
      while (digests.has(hole)) hole++;
      assert.ok(hole < file.blockCount, 'the image has a hole');
      digests.set(hole, createHash('sha256').update('nor this').digest('base64'));
      const altered = contentHashOf(file.blockCount, digests);
      await writeDigests(join(p.state.digests, `${altered}.json`), {
        blockCount: file.blockCount,
        contentHash: altered,
        digests,
      });
      await withProjectCloud(p.state.cloud, async (ec2) => {
        const c = ec2('a', 'us-east-1');
        const [image] = await ownImages(c);
        await c.send(
          new CreateTagsCommand({
            Resources: [image!.ImageId!],
            Tags: [{ Key: TAG.contentHash, Value: altered }],
          }),
        );
      });
      const bad = await verifyPublished(config, { ref: `demo@${revision}`, targets: ['a'] });
      assert.equal(bad.ok, false);
      const east = bad.placements.find((x) => x.key === 'a/us-east-1')!;
      assert.equal(east.status, 'differs');
      assert.deepEqual(east.result?.mismatches, [dataBlock]);
      assert.deepEqual(east.result?.missing, [hole]);
      assert.equal(bad.placements.find((x) => x.key === 'a/eu-west-1')?.status, 'ok');

      // The digests gone: a coded error for that placement, nothing compared.
      await unlink(join(p.state.digests, `${altered}.json`));
      const gone = await verifyPublished(config, { ref: `demo@${revision}` });
      assert.equal(gone.ok, false);
      assert.equal(gone.placements[0]?.status, 'error');
      assert.equal(gone.placements[0]?.error?.code, 'FERRY_PUBLISH_DIGESTS_MISSING');
      assert.equal(gone.placements[1]?.status, 'ok');

      // A revision with no image: FERRY_PUBLISH_IMAGE_NOT_FOUND everywhere.
      const other = 'f'.repeat(64);
      const none = await verifyPublished(
        { ...config, store: undefined } as unknown as typeof config,
        { ref: `demo@${other}` },
      );
      assert.ok(none.placements.every((x) => x.error?.code === 'FERRY_PUBLISH_IMAGE_NOT_FOUND'));
    });
  });
});
