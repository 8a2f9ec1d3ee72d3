import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { liveImages, prune, publishFromConfig, TAG } from '../../src/publish/index.js';
import { Journal, newRunId } from '../../src/publish/journal.js';
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

describe('ferry prune', () => {
  it('keeps the newest image per stream and placement, --dry-run changes nothing, an unfinished run keeps its image', async () => {
    await withTempDir(async (dir) => {
      const p = await makeProject(
        dir,
        awsTarget('a', {
          endpoint: 'local',
          account: 'a',
          regions: ['us-east-1'],
          extra: '    retention: {keep: 1}\n',
        }) + awsTarget('b', { endpoint: 'local', account: 'b', regions: ['us-east-1'] }),
      );
      const config = await p.config();
      const revisions: string[] = [];
      for (const n of [1, 2, 3]) {
        await writeFile(join(p.tree, 'var/lib/ferry-demo/build-info'), `build: ${n}\n`);
        const [out] = await publishFromConfig(config, { ref: 'demo', version: VERSION });
        assert.equal(out?.result?.ok, true);
        revisions.push(out!.result!.request.revision!);
      }
      assert.equal(new Set(revisions).size, 3);
      const images = async () =>
        withProjectCloud(p.state.cloud, async (ec2) => ({
          a: (await ownImages(ec2('a', 'us-east-1'))).map((i) => tagOf(i.Tags, TAG.revision)),
          aSnapshots: (await ownSnapshots(ec2('a', 'us-east-1'))).length,
          b: (await ownImages(ec2('b', 'us-east-1'))).length,
        }));
      assert.deepEqual((await images()).a.length, 3);

      // A run that did not finish holds the oldest revision's image.
      const held = await Journal.open(p.state.runs, newRunId());
      await held.append({
        type: 'run',
        state: 'started',
        request: { stream: 'demo', revision: revisions[0]!, image: null, targets: ['a', 'b'] },
        version: VERSION,
      });
      await held.close();

      const dry = await prune(config, { dryRun: true, version: VERSION });
      assert.equal(dry.dryRun, true);
      assert.deepEqual(dry.unlimited, ['b']);
      assert.deepEqual(
        dry.kept.map((c) => c.revision),
        [revisions[2]],
      );
      assert.deepEqual(
        dry.pruned.map((c) => c.revision),
        [revisions[1]],
      );
      assert.deepEqual(
        dry.skipped.map((c) => c.revision),
        [revisions[0]],
      );
      assert.deepEqual(dry.removed, []);
      assert.deepEqual(dry.runIds, []);
      const before = await images();
      assert.equal(before.a.length, 3, 'a dry run removes nothing');
      assert.equal(before.aSnapshots, 3);

      const r = await prune(config, { version: VERSION });
      assert.deepEqual(
        r.removed.map((x) => x.revision),
        [revisions[1]],
      );
      assert.equal(r.runIds.length, 1);
      let after = await images();
      assert.deepEqual(after.a.sort(), [revisions[0], revisions[2]].sort());
      assert.equal(after.aSnapshots, 2, 'the pruned image took its snapshot with it');
      assert.equal(after.b, 3, 'no retention in b: all stay');

      // The run finished: its image is no longer held, and goes.
      const done = await Journal.open(p.state.runs, held.runId);
      await done.append({ type: 'run', state: 'failed' });
      await done.close();
      const r2 = await prune(config, { version: VERSION });
      assert.deepEqual(
        r2.removed.map((x) => x.revision),
        [revisions[0]],
      );
      after = await images();
      assert.deepEqual(after.a, [revisions[2]]);
      assert.equal(after.aSnapshots, 1);
      const live = (await liveImages(p.state)).filter((l) => l.placement === 'a/us-east-1');
      assert.deepEqual(
        live.map((l) => l.revision),
        [revisions[2]],
      );

      const r3 = await prune(config, { version: VERSION });
      assert.deepEqual(r3.pruned, []);
      assert.deepEqual(r3.runIds, []);
    });
  });
});
