import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { liveImages, publishFromConfig, startLocalCloud, TAG } from '../../src/publish/index.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import {
  awsTarget,
  makeProject,
  ownImages,
  ownSnapshots,
  withProjectCloud,
} from '../helpers/publish-project.js';
import { withTempDir } from '../helpers/qemu.js';

const VERSION = '0.0.0-test';

const tagOf = (
  tags: { Key?: string | undefined; Value?: string | undefined }[] | undefined,
  key: string,
) => tags?.find((t) => t.Key === key)?.Value;

describe('publish: end to end on the local cloud', () => {
  it('publishes to 2 accounts x 2 regions, then a changed revision incrementally, and a re-run does nothing twice', async () => {
    await withTempDir(async (dir) => {
      const regions = ['us-east-1', 'eu-west-1'];
      const p = await makeProject(
        dir,
        awsTarget('a', {
          endpoint: 'local',
          account: 'a',
          regions,
          extra: '    encryption: default\n',
        }) + awsTarget('b', { endpoint: 'local', account: 'b', regions }),
      );
      const config = await p.config();
      const [first] = await publishFromConfig(config, {
        ref: 'demo',
        version: VERSION,
        verify: true,
      });
      assert.equal(first?.result?.ok, true, JSON.stringify(first?.result?.placements));
      const full = first!.result!.placements.map((x) => x.outcome!);
      assert.ok(full.every((o) => o.parentSnapshotId === null && o.blocksSent > 0));
      // The encrypted target writes zero data too; the unencrypted one skips it.
      assert.ok(full[0]!.blocksSent >= full[2]!.blocksSent);

      await writeFile(join(p.tree, 'var/lib/ferry-demo/build-info'), 'build: 2\n');
      const [second] = await publishFromConfig(config, {
        ref: 'demo',
        version: VERSION,
        verify: true,
      });
      assert.equal(second?.result?.ok, true);
      assert.notEqual(second!.result!.request.revision, first!.result!.request.revision);
      const inc = second!.result!.placements.map((x) => x.outcome!);
      for (const [i, o] of inc.entries()) {
        assert.equal(o.parentSnapshotId, full[i]!.snapshotIds[0], 'the child names its parent');
        assert.ok(o.blocksSent > 0 && o.blocksSent < full[i]!.blocksSent, `${o.blocksSent} blocks`);
      }

      const [again] = await publishFromConfig(config, { ref: 'demo', version: VERSION });
      assert.equal(again?.result?.ok, true);
      assert.equal(again?.ingested?.unchanged, true);
      assert.ok(
        again!.result!.placements.every(
          (x) => x.outcome?.existing === true && x.outcome.bytesSent === 0,
        ),
      );
      assert.deepEqual(
        again!.result!.placements.map((x) => x.outcome?.imageId),
        second!.result!.placements.map((x) => x.outcome?.imageId),
      );

      const live = await liveImages(p.state);
      assert.equal(live.length, 8, 'two revisions in four placements');
      await withProjectCloud(p.state.cloud, async (ec2) => {
        for (const account of ['a', 'b'] as const)
          for (const region of regions) {
            const images = await ownImages(ec2(account, region));
            assert.equal(images.length, 2, `${account} ${region}`);
            for (const img of images) {
              assert.equal(img.VirtualizationType, 'hvm');
              assert.equal(img.Architecture, 'x86_64');
              assert.equal(tagOf(img.Tags, TAG.stream), 'demo');
              assert.equal(tagOf(img.Tags, TAG.version), VERSION);
            }
            const snaps = await ownSnapshots(ec2(account, region));
            assert.equal(snaps.length, 2);
            assert.ok(
              snaps.every((s) => s.State === 'completed' && s.Encrypted === (account === 'a')),
            );
          }
      });
    });
  });

  it('publishes through 5xx answers, throttling, resets and lost answers', async () => {
    await withTempDir(async (dir) => {
      const p0 = await makeProject(join(dir, 'p'), '');
      const cloud = await startLocalCloud(p0.state.cloud);
      const proxy = new FaultProxy(
        cloud.url,
        [
          { match: { operation: 'PutSnapshotBlock' }, fault: 'reset-request', firstN: 1 },
          { match: { operation: 'PutSnapshotBlock' }, fault: 'reset-response', firstN: 1 },
          { match: { operation: 'PutSnapshotBlock' }, fault: 'status', status: 429, everyNth: 3 },
          { match: { operation: 'StartSnapshot' }, fault: 'status', status: 503, firstN: 1 },
          { match: { operation: 'CompleteSnapshot' }, fault: 'status', status: 500, firstN: 1 },
          { match: { operation: 'RegisterImage' }, fault: 'reset-response', firstN: 1 },
          { match: { operation: 'DescribeImages' }, fault: 'reset-request', firstN: 2 },
          { match: { operation: 'CreateTags' }, fault: 'status', status: 503, firstN: 1 },
        ],
        { seed: 7 },
      );
      const url = await proxy.listen();
      try {
        await writeFile(
          join(p0.dir, 'ferry.yaml'),
          `store: ./store\nstate: ./state\nstreams:\n  demo:\n    source: ./tree\n    layout: disk\n    boot: none\ntargets:\n${awsTarget(
            'a',
            { endpoint: url, account: 'a', regions: ['us-east-1'] },
          )}`,
        );
        const [out] = await publishFromConfig(await p0.config(), {
          ref: 'demo',
          version: VERSION,
          verify: true,
          concurrency: 4,
        });
        assert.equal(out?.result?.ok, true, JSON.stringify(out?.result?.placements[0]?.error));
        for (const [i, c] of proxy.counts.entries()) assert.ok(c.injected > 0, `rule ${i} fired`);
      } finally {
        await proxy.close();
        await cloud.close();
      }
      await withProjectCloud(p0.state.cloud, async (ec2) => {
        // One image, one snapshot: the lost RegisterImage answer did not make a second.
        assert.equal((await ownImages(ec2('a', 'us-east-1'))).length, 1);
        assert.equal((await ownSnapshots(ec2('a', 'us-east-1'))).length, 1);
      });
    });
  });

  it('cleans up a placement that fails and publishes the others', async () => {
    await withTempDir(async (dir) => {
      const p = await makeProject(dir, '');
      const cloud = await startLocalCloud(p.state.cloud);
      const proxy = new FaultProxy(cloud.url, [
        {
          match: { operation: 'RegisterImage' },
          fault: 'status',
          status: 400,
          errorCode: 'InvalidParameterValue',
        },
      ]);
      const bad = await proxy.listen();
      try {
        await writeFile(
          join(p.dir, 'ferry.yaml'),
          `store: ./store\nstate: ./state\nstreams:\n  demo:\n    source: ./tree\n    layout: disk\n    boot: none\ntargets:\n${awsTarget(
            'good',
            { endpoint: cloud.url, account: 'a', regions: ['us-east-1'] },
          )}${awsTarget('bad', { endpoint: bad, account: 'b', regions: ['us-east-1'] })}`,
        );
        const [out] = await publishFromConfig(await p.config(), { ref: 'demo', version: VERSION });
        const r = out!.result!;
        assert.equal(r.ok, false);
        const good = r.placements.find((x) => x.target === 'good')!;
        const failed = r.placements.find((x) => x.target === 'bad')!;
        assert.equal(good.state, 'done');
        assert.equal(failed.state, 'failed');
        assert.equal(failed.error?.code, 'FERRY_AWS_REQUEST');
        assert.equal(failed.cleanedUp.length, 1);
        assert.match(failed.cleanedUp[0]!, /^snap-/);
      } finally {
        await proxy.close();
        await cloud.close();
      }
      await withProjectCloud(p.state.cloud, async (ec2) => {
        assert.equal(
          (await ownSnapshots(ec2('b', 'us-east-1'))).length,
          0,
          'no snapshot left behind',
        );
        assert.equal((await ownImages(ec2('a', 'us-east-1'))).length, 1);
      });
    });
  });
  it('answers a coded error when several block uploads fail at once, and leaves no snapshot', async () => {
    await withTempDir(async (dir) => {
      const p = await makeProject(dir, '');
      const cloud = await startLocalCloud(p.state.cloud);
      // Every put is refused (not retryable), so the four in flight all fail.
      const proxy = new FaultProxy(cloud.url, [
        {
          match: { operation: 'PutSnapshotBlock' },
          fault: 'status',
          status: 400,
          errorCode: 'ValidationException',
        },
      ]);
      const url = await proxy.listen();
      try {
        await writeFile(
          join(p.dir, 'ferry.yaml'),
          `store: ./store\nstate: ./state\nstreams:\n  demo:\n    source: ./tree\n    layout: disk\n    boot: none\ntargets:\n${awsTarget(
            'a',
            { endpoint: url, account: 'a', regions: ['us-east-1'] },
          )}`,
        );
        const [out] = await publishFromConfig(await p.config(), {
          ref: 'demo',
          version: VERSION,
          concurrency: 4,
        });
        const failed = out!.result!.placements[0]!;
        assert.equal(failed.state, 'failed');
        assert.ok((proxy.counts[0]?.injected ?? 0) >= 2, 'several puts were refused');
        assert.equal(failed.error?.code, 'FERRY_AWS_REQUEST', JSON.stringify(failed.error));
        assert.match(failed.error?.message ?? '', /^Cannot /);
        assert.equal(failed.cleanedUp.length, 1);
      } finally {
        await proxy.close();
        await cloud.close();
      }
      await withProjectCloud(p.state.cloud, async (ec2) => {
        assert.equal((await ownSnapshots(ec2('a', 'us-east-1'))).length, 0);
      });
    });
  });
});
