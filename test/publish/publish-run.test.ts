import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FerryError } from '../../src/errors/index.js';
import { history, liveImages } from '../../src/publish/history.js';
import { Journal, listRuns, readJournal } from '../../src/publish/journal.js';
import {
  type MethodContext,
  type MethodRunner,
  type PublishDependencies,
  type PublishTarget,
  publish,
  unfinishedRuns,
} from '../../src/publish/publish.js';
import { loadRuns } from '../../src/publish/run-state.js';
import { statePaths } from '../../src/publish/state-paths.js';
import type { AwsPlacement, BlockSource } from '../../src/publish/types.js';
import { withTempDir } from '../helpers/qemu.js';

const placement = (target: string, region: string): AwsPlacement => ({
  cloud: 'aws',
  target,
  region,
  key: `${target}/${region}`,
  credentials: async () => ({ accessKeyId: 'test', secretAccessKey: 'test' }),
  encrypted: false,
  shareWith: [],
  tags: {},
});

const fakeSource = (): BlockSource => ({
  size: 1 << 20,
  blockCount: 2,
  contentHash: 'c'.repeat(64),
  async *blocks() {},
  readBlock: async () => {},
  close: async () => {},
});

/** A runner that records what it was asked and fails where told. */
function fakeRunner(
  options: { failOn?: string; crashOn?: { key: string; signal: AbortController } } = {},
) {
  const calls: string[] = [];
  const cleaned: string[] = [];
  const runner: MethodRunner = {
    run: async (ctx: MethodContext) => {
      const key = ctx.placement.key;
      const snap = await ctx.steps.run('snapshot', async () => {
        const cp = ctx.steps.checkpoint<{ blocks: number }>('snapshot');
        const from = (await cp.load())?.blocks ?? 0;
        calls.push(`${key}:snapshot-from-${from}`);
        await cp.save({ blocks: from + 1 });
        if (options.crashOn?.key === key && from === 0) {
          options.crashOn.signal.abort();
          throw new FerryError('FERRY_ABORTED', 'Cannot upload: the operation was aborted');
        }
        return { snapshotId: `snap-${key}` };
      });
      const img = await ctx.steps.run('register', async () => {
        calls.push(`${key}:register`);
        if (options.failOn === key) throw new FerryError('FERRY_IO', 'Cannot register: boom');
        return { imageId: `ami-${key}` };
      });
      return {
        imageId: String(img.imageId),
        snapshotIds: [String(snap.snapshotId)],
        existing: false,
        parentSnapshotId: null,
        blocksSent: 1,
        blocksSkipped: 1,
        bytesSent: 512 * 1024,
      };
    },
    cleanUp: async (ctx) => {
      cleaned.push(ctx.placement.key);
      return [`snap-${ctx.placement.key}`];
    },
  };
  return { runner, calls, cleaned };
}

function deps(runner: MethodRunner): PublishDependencies {
  return {
    runners: { 'ebs-direct': runner, 'vm-import': runner, glance: runner },
    openSource: async () => fakeSource(),
    inspect: async () => ({
      facts: {
        architecture: 'x86_64',
        enaSupport: true,
        rootDeviceName: '/dev/xvda',
        os: null,
        notes: [],
      },
      report: null,
    }),
    saveDigests: async () => {},
  };
}

const targets = (): PublishTarget[] => [
  {
    name: 'a',
    method: 'ebs-direct',
    concurrency: 4,
    placements: [placement('a', 'us-east-1'), placement('a', 'eu-west-1')],
  },
  { name: 'b', method: 'ebs-direct', concurrency: 4, placements: [placement('b', 'us-east-1')] },
];

describe('publish: the run, its journal and its resume', () => {
  it('runs every placement, journals each step and ends done', async () => {
    await withTempDir(async (dir) => {
      const image = join(dir, 'disk.raw');
      await writeFile(image, Buffer.alloc(1024));
      const state = statePaths(join(dir, 'state'));
      const fake = fakeRunner();
      const r = await publish(
        {
          source: { kind: 'image', name: 'web', path: image },
          targets: targets(),
          state,
          version: '0.1.0',
        },
        deps(fake.runner),
      );
      assert.equal(r.ok, true);
      assert.deepEqual(
        r.placements.map((p) => [p.key, p.state, p.outcome?.imageId]),
        [
          ['a/us-east-1', 'done', 'ami-a/us-east-1'],
          ['a/eu-west-1', 'done', 'ami-a/eu-west-1'],
          ['b/us-east-1', 'done', 'ami-b/us-east-1'],
        ],
      );
      const [run] = await loadRuns(state.runs);
      assert.equal(run?.outcome, 'done');
      const live = await liveImages(state);
      assert.deepEqual(
        live.map((l) => [l.stream, l.placement, l.imageId, l.revision]),
        [
          ['web', 'a/us-east-1', 'ami-a/us-east-1', 'c'.repeat(64)],
          ['web', 'a/eu-west-1', 'ami-a/eu-west-1', 'c'.repeat(64)],
          ['web', 'b/us-east-1', 'ami-b/us-east-1', 'c'.repeat(64)],
        ],
      );
      const [h] = await history(state, { stream: 'web' });
      assert.equal(h?.outcome, 'done');
      assert.deepEqual(
        h?.placements
          .find((p) => p.placement === 'b/us-east-1')
          ?.steps.map((x) => [x.step, x.state]),
        [
          ['snapshot', 'done'],
          ['register', 'done'],
        ],
      );
      assert.ok((h?.placements[0]?.steps[0]?.seconds ?? -1) >= 0);
      assert.deepEqual(await history(state, { stream: 'other' }), []);
      assert.equal(run?.steps.get('a/eu-west-1\u0000register')?.detail.imageId, 'ami-a/eu-west-1');
      assert.deepEqual(
        run?.steps.get('\u0000inspect')?.transitions.map(([s]) => s),
        ['started', 'done'],
      );
    });
  });

  it('cleans up a failed placement, finishes the others and ends failed', async () => {
    await withTempDir(async (dir) => {
      const image = join(dir, 'disk.raw');
      await writeFile(image, Buffer.alloc(1024));
      const state = statePaths(join(dir, 'state'));
      const fake = fakeRunner({ failOn: 'a/eu-west-1' });
      const r = await publish(
        {
          source: { kind: 'image', name: 'web', path: image },
          targets: targets(),
          state,
          version: '0.1.0',
        },
        deps(fake.runner),
      );
      assert.equal(r.ok, false);
      const failed = r.placements.find((p) => p.key === 'a/eu-west-1');
      assert.equal(failed?.state, 'failed');
      assert.equal(failed?.error?.code, 'FERRY_IO');
      assert.deepEqual(failed?.cleanedUp, ['snap-a/eu-west-1']);
      assert.deepEqual(fake.cleaned, ['a/eu-west-1']);
      assert.equal(r.placements.filter((p) => p.state === 'done').length, 2);
      const [run] = await loadRuns(state.runs);
      assert.equal(run?.outcome, 'failed');
      assert.equal(run?.error?.code, 'FERRY_IO');
    });
  });

  it('resumes an aborted run: done steps are not done again, a started one continues from its checkpoint', async () => {
    await withTempDir(async (dir) => {
      const image = join(dir, 'disk.raw');
      await writeFile(image, Buffer.alloc(1024));
      const state = statePaths(join(dir, 'state'));
      const abort = new AbortController();
      const first = fakeRunner({ crashOn: { key: 'b/us-east-1', signal: abort } });
      const options = {
        source: { kind: 'image' as const, name: 'web', path: image },
        targets: targets(),
        state,
        version: '0.1.0',
      };
      await assert.rejects(
        publish({ ...options, signal: abort.signal, parallel: 1 }, deps(first.runner)),
        {
          code: 'FERRY_ABORTED',
        },
      );
      assert.deepEqual(first.cleaned, [], 'an abort leaves its work for the resume');
      const [aborted] = await loadRuns(state.runs);
      assert.equal(aborted?.outcome, 'aborted');
      const second = fakeRunner();
      const r = await publish(options, deps(second.runner));
      assert.equal(r.ok, true);
      assert.equal(r.resumed, true);
      assert.equal(r.runId, aborted?.id);
      // a/* were finished before the abort; b resumed its snapshot from the checkpoint.
      assert.deepEqual(second.calls, ['b/us-east-1:snapshot-from-1', 'b/us-east-1:register']);
      assert.deepEqual(await listRuns(state.runs), [aborted?.id]);
      const records = await readJournal(join(state.runs, `${r.runId}.jsonl`));
      assert.deepEqual(
        records.filter((x) => x.type === 'run').map((x) => x.state),
        ['started', 'aborted', 'resumed', 'done'],
      );
    });
  });

  it('starts a new run when the last one finished, and refuses a second publish at once', async () => {
    await withTempDir(async (dir) => {
      const image = join(dir, 'disk.raw');
      await writeFile(image, Buffer.alloc(1024));
      const state = statePaths(join(dir, 'state'));
      const options = {
        source: { kind: 'image' as const, name: 'web', path: image },
        targets: targets(),
        state,
        version: '0.1.0',
      };
      await publish(options, deps(fakeRunner().runner));
      let release: () => void = () => {};
      const held = new Promise<void>((r) => {
        release = r;
      });
      const slow: MethodRunner = {
        run: async () => {
          await held;
          throw new FerryError('FERRY_IO', 'Cannot run: released');
        },
        cleanUp: async () => [],
      };
      const running = publish(options, deps(slow));
      await new Promise((r) => setTimeout(r, 100));
      await assert.rejects(publish(options, deps(fakeRunner().runner)), {
        code: 'FERRY_PUBLISH_LOCKED',
      });
      release();
      await running;
      assert.equal((await listRuns(state.runs)).length, 2);
    });
  });
});

describe('publish: the journal', () => {
  it('stops at a torn last line and refuses a journal that does not begin with its run', async () => {
    await withTempDir(async (dir) => {
      const j = await Journal.open(dir, '20261202T101010Z-abcdef');
      await j.append({
        type: 'run',
        state: 'started',
        request: { stream: 's', revision: 'r', image: null, targets: ['t'] },
        version: '1',
      });
      await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          j.append({ type: 'step', placement: 't/us-east-1', step: `s${i}`, state: 'started' }),
        ),
      );
      await j.close();
      const path = join(dir, '20261202T101010Z-abcdef.jsonl');
      const { appendFile } = await import('node:fs/promises');
      await appendFile(path, '{"t":1,"type":"step","placem');
      const records = await readJournal(path);
      assert.equal(records.length, 51);
      await writeFile(path, '{"t":1,"type":"step","placement":null,"step":"x","state":"done"}\n');
      await assert.rejects(readJournal(path), { code: 'FERRY_JOURNAL_INVALID' });
    });
  });

  it('does not take a removal that stopped before its first step for a publish to resume', async () => {
    await withTempDir(async (dir) => {
      const state = statePaths(join(dir, 'state'));
      const j = await Journal.open(state.runs, '20261202T101010Z-abcdef');
      await j.append({
        type: 'run',
        state: 'started',
        request: { stream: 'web', revision: 'r', image: null, targets: ['a'], kind: 'deregister' },
        version: '1',
      });
      await j.close();
      const k = await Journal.open(state.runs, '20261202T101011Z-abcdef');
      await k.append({
        type: 'run',
        state: 'started',
        request: { stream: 'web', revision: 'r', image: null, targets: ['a'] },
        version: '1',
      });
      await k.close();
      assert.deepEqual(
        (await unfinishedRuns(state)).map((r) => r.id),
        ['20261202T101011Z-abcdef'],
      );
    });
  });
});
