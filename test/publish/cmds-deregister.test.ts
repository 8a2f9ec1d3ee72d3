import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  deregisterPublished,
  history,
  liveImages,
  publishFromConfig,
  unfinishedRuns,
} from '../../src/publish/index.js';
import { readJournal } from '../../src/publish/journal.js';
import {
  awsTarget,
  makeProject,
  ownImages,
  ownSnapshots,
  withProjectCloud,
} from '../helpers/publish-project.js';
import { withTempDir } from '../helpers/qemu.js';

const VERSION = '0.0.0-test';

describe('ferry deregister', () => {
  it('deregisters the image, then deletes its snapshot, journaled so images ls drops it; again is a no-op', async () => {
    await withTempDir(async (dir) => {
      const p = await makeProject(
        dir,
        awsTarget('a', { endpoint: 'local', account: 'a', regions: ['us-east-1'] }) +
          awsTarget('b', { endpoint: 'local', account: 'b', regions: ['us-east-1'] }),
      );
      const config = await p.config();
      const [out] = await publishFromConfig(config, { ref: 'demo', version: VERSION });
      assert.equal(out?.result?.ok, true);
      const revision = out!.result!.request.revision!;
      const published = out!.result!.placements.map((x) => x.outcome!);
      assert.equal((await liveImages(p.state)).length, 2);

      const r = await deregisterPublished(config, {
        ref: `demo@${revision.slice(0, 12)}`,
        targets: ['a'],
        version: VERSION,
      });
      assert.notEqual(r.runId, null);
      assert.deepEqual(r.absent, []);
      assert.equal(r.removed.length, 1);
      assert.equal(r.removed[0]?.imageId, published[0]!.imageId);
      assert.equal(r.removed[0]?.deregistered, true);
      assert.deepEqual(r.removed[0]?.deletedSnapshots, published[0]!.snapshotIds);

      // The journal: started with the image and its snapshots, then done.
      const records = await readJournal(join(p.state.runs, `${r.runId}.jsonl`));
      assert.deepEqual(
        records.map((x) =>
          x.type === 'step'
            ? `${x.placement} ${x.step} ${x.state}`
            : x.type === 'run'
              ? `run ${x.state}`
              : 'checkpoint',
        ),
        [
          'run started',
          'a/us-east-1 deregister started',
          'a/us-east-1 deregister done',
          'run done',
        ],
      );
      const first = records[0]!;
      assert.ok(first.type === 'run' && first.state === 'started');
      assert.deepEqual(first.request, {
        stream: 'demo',
        revision,
        image: null,
        targets: ['a'],
        kind: 'deregister',
      });

      await withProjectCloud(p.state.cloud, async (ec2) => {
        assert.deepEqual(await ownImages(ec2('a', 'us-east-1')), []);
        const snaps = await ownSnapshots(ec2('a', 'us-east-1'));
        assert.ok(!snaps.some((s) => published[0]!.snapshotIds.includes(s.SnapshotId!)));
        // Target b was not asked: its image stands.
        assert.equal((await ownImages(ec2('b', 'us-east-1'))).length, 1);
      });
      const live = await liveImages(p.state);
      assert.deepEqual(
        live.map((l) => [l.placement, l.imageId]),
        [['b/us-east-1', published[1]!.imageId]],
      );
      const runs = await history(p.state);
      assert.deepEqual(
        runs.map((h) => h.kind),
        ['publish', 'deregister'],
      );
      assert.equal(runs[1]?.placements[0]?.state, 'removed');
      assert.deepEqual(await unfinishedRuns(p.state), []);

      // Nothing left in a: said so, no run written.
      const again = await deregisterPublished(config, {
        ref: `demo@${revision}`,
        targets: ['a'],
        version: VERSION,
      });
      assert.equal(again.runId, null);
      assert.deepEqual(again.removed, []);
      assert.deepEqual(again.absent, ['a/us-east-1']);
      assert.equal((await history(p.state)).length, 2);

      // A republish puts a back (b kept its image); then both are removed,
      // at once, and reported in ferry.yaml's order.
      const [again2] = await publishFromConfig(config, { ref: 'demo', version: VERSION });
      assert.equal(again2?.result?.ok, true);
      const both = await deregisterPublished(config, { ref: `demo@${revision}`, version: VERSION });
      assert.deepEqual(
        both.removed.map((x) => x.placement),
        ['a/us-east-1', 'b/us-east-1'],
      );
      assert.ok(both.removed.every((x) => x.deregistered && x.deletedSnapshots.length > 0));
      const lines = (await readJournal(join(p.state.runs, `${both.runId}.jsonl`))).map((x) =>
        x.type === 'step' ? `${x.placement} ${x.state}` : x.type === 'run' ? `run ${x.state}` : '',
      );
      assert.equal(lines[0], 'run started');
      assert.equal(lines.at(-1), 'run done');
      assert.deepEqual(lines.slice(1, -1).sort(), [
        'a/us-east-1 done',
        'a/us-east-1 started',
        'b/us-east-1 done',
        'b/us-east-1 started',
      ]);
      assert.deepEqual(await liveImages(p.state), []);
    });
  });

  it('keeps the order: an image still registered keeps its snapshot from being deleted', async () => {
    // The order is the point: deleting the snapshot first is refused while the image uses it.
    await withTempDir(async (dir) => {
      const p = await makeProject(
        dir,
        awsTarget('a', { endpoint: 'local', account: 'a', regions: ['us-east-1'] }),
      );
      const config = await p.config();
      const [out] = await publishFromConfig(config, { ref: 'demo', version: VERSION });
      const o = out!.result!.placements[0]!.outcome!;
      const { DeleteSnapshotCommand } = await import('@aws-sdk/client-ec2');
      await withProjectCloud(p.state.cloud, async (ec2) => {
        await assert.rejects(
          ec2('a', 'us-east-1').send(new DeleteSnapshotCommand({ SnapshotId: o.snapshotIds[0] })),
          (e: Error) => e.name === 'InvalidSnapshot.InUse',
        );
      });
      const r = await deregisterPublished(config, {
        ref: `demo@${out!.result!.request.revision}`,
        version: VERSION,
      });
      assert.deepEqual(r.removed[0]?.deletedSnapshots, o.snapshotIds);
      await withProjectCloud(p.state.cloud, async (ec2) => {
        assert.deepEqual(await ownImages(ec2('a', 'us-east-1')), []);
        assert.deepEqual(await ownSnapshots(ec2('a', 'us-east-1')), []);
      });
    });
  });
});
