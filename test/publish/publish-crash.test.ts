/**
 * kill -9 of `ferry publish` at random points, then the next `ferry publish`:
 * every revision ends published exactly once in every placement, and
 * nothing is left behind (no pending or unreferenced snapshot, no
 * unfinished run). The local cloud runs inside the publish (endpoint:
 * local), so it dies with it too. FERRY_KILL_TRIALS sets the number of
 * trials (default 20; CI runs a few).
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TAG } from '../../src/publish/index.js';
import { killAndResume } from '../helpers/publish-cli.js';
import {
  awsTarget,
  makeProject,
  ownImages,
  ownSnapshots,
  withProjectCloud,
} from '../helpers/publish-project.js';
import { withTempDir } from '../helpers/qemu.js';

const TRIALS = Number(process.env.FERRY_KILL_TRIALS ?? 20);

describe('publish: kill -9 at random points, then resume', () => {
  it(`${TRIALS} trials: every revision published once everywhere, nothing left behind`, {
    timeout: 900_000,
  }, async (t) => {
    await withTempDir(async (dir) => {
      const p = await makeProject(
        dir,
        awsTarget('a', {
          endpoint: 'local',
          account: 'a',
          regions: ['us-east-1', 'eu-west-1'],
          extra: '    encryption: default\n',
        }) + awsTarget('b', { endpoint: 'local', account: 'b', regions: ['us-east-1'] }),
      );
      const killed = await killAndResume({
        dir,
        tree: p.tree,
        runs: p.state.runs,
        ref: 'demo',
        trials: TRIALS,
        seed: Number(process.env.FERRY_KILL_SEED ?? 20261202),
        minMs: 200,
        spreadMs: 2300,
      });
      t.diagnostic(`${killed} of ${TRIALS} publishes were killed and resumed`);
      await withProjectCloud(p.state.cloud, async (ec2) => {
        for (const [account, region] of [
          ['a', 'us-east-1'],
          ['a', 'eu-west-1'],
          ['b', 'us-east-1'],
        ] as const) {
          const images = await ownImages(ec2(account, region));
          const revisions = images.map((i) => i.Tags?.find((t) => t.Key === TAG.revision)?.Value);
          assert.equal(
            new Set(revisions).size,
            images.length,
            `${account}/${region}: a revision twice`,
          );
          assert.equal(images.length, TRIALS, `${account}/${region}: one image per revision`);
          const used = new Set(
            images.flatMap((i) => i.BlockDeviceMappings?.map((m) => m.Ebs?.SnapshotId) ?? []),
          );
          const snaps = await ownSnapshots(ec2(account, region));
          for (const s of snaps) {
            assert.equal(
              s.State,
              'completed',
              `${account}/${region}: ${s.SnapshotId} is ${s.State}`,
            );
            assert.ok(
              used.has(s.SnapshotId),
              `${account}/${region}: ${s.SnapshotId} is left behind`,
            );
          }
          assert.equal(snaps.length, TRIALS);
        }
      });
    });
  });
});
