/**
 * kill -9 of `ferry publish` at random points, then the next `ferry publish`:
 * every revision ends published exactly once in every placement, and
 * nothing is left behind (no pending or unreferenced snapshot, no
 * unfinished run). The local cloud runs inside the publish (endpoint:
 * local), so it dies with it too. FERRY_KILL_TRIALS sets the number of
 * trials (default 20; CI runs a few).
 */

import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadRuns, TAG } from '../../src/publish/index.js';
import { publishCli, seeded } from '../helpers/publish-cli.js';
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
      const next = seeded(Number(process.env.FERRY_KILL_SEED ?? 20261202));
      let killed = 0;
      for (let trial = 0; trial < TRIALS; trial++) {
        await writeFile(join(p.tree, 'var/lib/ferry-demo/build-info'), `build: ${trial}\n`);
        const run = publishCli(dir, ['demo']);
        const delay = 200 + Math.floor(next() * 2300);
        const timer = setTimeout(() => run.child.kill('SIGKILL'), delay);
        const code = await run.done;
        clearTimeout(timer);
        if (code === null) {
          killed++;
          // Half the time the bare command resumes; else the same command again.
          const runs = await loadRuns(p.state.runs);
          const bare = trial % 2 === 1 && runs.some((r) => r.outcome === 'unfinished');
          const again = publishCli(dir, bare ? [] : ['demo']);
          assert.equal(
            await again.done,
            0,
            `trial ${trial}: the resume failed (killed after ${delay} ms)`,
          );
          if (bare) assert.equal(await publishCli(dir, ['demo']).done, 0);
        } else assert.equal(code, 0, `trial ${trial} failed`);
      }
      t.diagnostic(`${killed} of ${TRIALS} publishes were killed and resumed`);
      assert.ok(killed >= Math.min(TRIALS, 3), `only ${killed} of ${TRIALS} runs were killed`);

      const runs = await loadRuns(p.state.runs);
      assert.ok(runs.every((r) => r.outcome !== 'unfinished' && r.outcome !== 'aborted'));
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
