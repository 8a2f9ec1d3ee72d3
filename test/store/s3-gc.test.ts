/**
 * GC of an S3 store against a real S3 server (Swift's s3api): retention,
 * pins, shared objects, the grace period, writers committing while it
 * sweeps, and a GC killed at several points.
 */
import assert from 'node:assert/strict';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3';
import {
  BackendReader,
  exportDirectory,
  ingestDirectory,
  LocalStore,
  localBackend,
  replicate,
  S3Store,
} from '../../src/store/index.js';
import { runCli } from '../helpers/cli.js';
import { withTempDir } from '../helpers/qemu.js';
import { credentials, FaultyClient, settle, startSwift, swiftSkip } from '../helpers/swift.js';

type Tree = Record<string, string>;

/** Two streams; objects shared within and across them; see `expected`. */
const REVISIONS: Array<{ stream: string; name: string; tree: Tree }> = [
  { stream: 'base', name: 'b1', tree: { common: 'common', version: 'base 1', extra: 'b1 only' } },
  { stream: 'base', name: 'b2', tree: { common: 'common', version: 'base 2' } },
  { stream: 'base', name: 'b3', tree: { common: 'common', version: 'base 3' } },
  // "base 2" is shared only with b2 (removed too); "base 3" with b3 (kept).
  {
    stream: 'apps/web',
    name: 'a1',
    tree: { common: 'common', version: 'base 2', next: 'base 3', app: 'app 1' },
  },
  { stream: 'apps/web', name: 'a2', tree: { common: 'common', app: 'app 2' } },
];

async function writeTree(dir: string, tree: Tree): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, 'etc'), { recursive: true });
  for (const [name, text] of Object.entries(tree))
    await writeFile(join(dir, 'etc', name), `${text}\n`.repeat(50));
}

interface Populated {
  readonly local: LocalStore;
  readonly ids: Record<string, string>;
  /** Every object a revision names, its manifest included. */
  refs(name: string): Promise<string[]>;
  size(id: string): Promise<number>;
}

/** Ingests the five revisions into a local store, in order, and replicates them to `s3`. */
async function populate(dir: string, s3: S3Store): Promise<Populated> {
  const local = await LocalStore.open(join(dir, 'local'));
  const ids: Record<string, string> = {};
  for (const r of REVISIONS) {
    const src = join(dir, 'src', r.name);
    await writeTree(src, r.tree);
    const s = await ingestDirectory(local, src);
    await local.commit(r.stream, s.revision, src);
    ids[r.name] = s.revision;
    // Records are ordered by their time: keep them apart.
    await sleep(5);
  }
  await replicate(localBackend(local), s3);
  return {
    local,
    ids,
    async refs(name) {
      const m = await local.getManifest(ids[name]!);
      return [ids[name]!, ...m.entries.flatMap((e) => (e.hash === undefined ? [] : [e.hash]))];
    },
    size: (id) => local.objects.size(id),
  };
}

describe('S3 gc on Swift s3api', { skip: swiftSkip, timeout: 600_000 }, () => {
  let endpoint = '';
  let client: S3Client;
  let newBucket: () => Promise<string>;
  before(() => {
    ({ endpoint, client, newBucket } = startSwift());
  });

  const keys = async (bucket: string, prefix: string): Promise<string[]> => {
    const out: string[] = [];
    let token: string | undefined;
    do {
      const r = await client.send(
        new ListObjectsV2Command({
          Bucket: bucket,
          Prefix: prefix,
          ...(token === undefined ? {} : { ContinuationToken: token }),
        }),
      );
      for (const c of r.Contents ?? []) out.push(c.Key!);
      token = r.NextContinuationToken;
    } while (token !== undefined);
    return out.sort();
  };
  const objectIds = async (bucket: string): Promise<string[]> =>
    (await keys(bucket, 'objects/')).map((k) => k.slice('objects/'.length).replace('/', '')).sort();

  /** Every revision the store lists is whole: each of its objects reads back and verifies. */
  const wholeEverywhere = async (dir: string, s3: S3Store): Promise<void> => {
    const mirror = await LocalStore.open(join(dir, `mirror-${Math.random()}`));
    await replicate(s3, localBackend(mirror));
  };
  /** A revision exports from the bucket, every object verified. */
  const exports = async (dir: string, s3: S3Store, id: string): Promise<number> => {
    const reader = new BackendReader(s3);
    const r = await exportDirectory(
      reader,
      await reader.getManifest(id),
      join(dir, `out-${Math.random()}`),
    );
    return r.entries;
  };

  /** What gc --keep 1 must leave with b1 pinned: b1, b3 and a2 whole, nothing else. */
  const expected = async (p: Populated) => {
    const kept = new Set([
      ...(await p.refs('b1')),
      ...(await p.refs('b3')),
      ...(await p.refs('a2')),
    ]);
    const all = new Set<string>();
    for (const r of REVISIONS) for (const id of await p.refs(r.name)) all.add(id);
    const removed = [...all].filter((id) => !kept.has(id));
    let bytes = 0;
    for (const id of removed) bytes += await p.size(id);
    return { kept: [...kept].sort(), removed, bytes };
  };

  it('keeps the newest revision of each stream and the pinned one, and removes exactly what nothing kept names', async () => {
    await withTempDir(async (dir) => {
      const bucket = await newBucket();
      const s3 = new S3Store({ url: `s3://${bucket}`, endpoint, credentials });
      const p = await populate(dir, s3);
      await s3.pin(p.ids.b1!, 'published to local/us-east-1');
      const want = await expected(p);
      // Both manifests, "base 2" and "app 1"; "base 3" stays with b3, "common" with all.
      assert.equal(want.removed.length, 4);
      assert.ok(
        want.kept.includes(p.ids.b1!) && want.kept.length < (await objectIds(bucket)).length,
      );
      await settle();
      const before = await objectIds(bucket);
      const dry = await s3.gc({ keep: 1, graceSeconds: 0, dryRun: true });
      assert.deepEqual(await objectIds(bucket), before, 'a dry run removes nothing');
      const r = await s3.gc({ keep: 1, graceSeconds: 0 });
      assert.deepEqual(dry, r, 'the dry run reported what the real run did');
      assert.deepEqual(
        r.removedRevisions.map((x) => `${x.stream}@${x.id}`).sort(),
        [`apps/web@${p.ids.a1}`, `base@${p.ids.b2}`].sort(),
      );
      assert.equal(r.removedObjects, want.removed.length);
      assert.equal(r.removedBytes, want.bytes);
      assert.equal(r.keptObjects, want.kept.length);
      assert.deepEqual(await objectIds(bucket), want.kept);
      assert.deepEqual(
        (await s3.revisions('base')).map((x) => x.id),
        [p.ids.b1, p.ids.b3],
      );
      assert.deepEqual(
        (await s3.revisions('apps/web')).map((x) => x.id),
        [p.ids.a2],
      );
      assert.equal((await keys(bucket, 'streams/')).length, 3, 'one record each');
      assert.deepEqual(await s3.pins(), [p.ids.b1]);
      for (const name of ['b1', 'b3', 'a2'])
        assert.equal(
          await exports(dir, s3, p.ids[name]!),
          (await p.local.getManifest(p.ids[name]!)).entries.length,
        );
      await wholeEverywhere(dir, s3);
      assert.deepEqual(await keys(bucket, 'tmp/'), []);
      // Nothing left to do; and without --keep, every revision stays.
      const again = await s3.gc({ keep: 1, graceSeconds: 0 });
      assert.deepEqual([again.removedRevisions.length, again.removedObjects], [0, 0]);
      // Unpinned, b1 is beyond retention at the next run.
      await s3.unpin(p.ids.b1!);
      const unpinned = await s3.gc({ keep: 1, graceSeconds: 0 });
      assert.deepEqual(unpinned.removedRevisions, [{ stream: 'base', id: p.ids.b1 }]);
      assert.deepEqual(
        (await s3.revisions('base')).map((x) => x.id),
        [p.ids.b3],
      );
      await wholeEverywhere(dir, s3);
    });
  });

  it('spares unreferenced objects younger than the grace period, and what a commit on its way names', async () => {
    await withTempDir(async (dir) => {
      const bucket = await newBucket();
      const s3 = new S3Store({ url: `s3://${bucket}`, endpoint, credentials });
      const local = await LocalStore.open(join(dir, 'local'));
      const src = join(dir, 'src');
      await writeTree(src, { motd: 'pending revision' });
      const pending = await ingestDirectory(local, src);
      await local.commit('s', pending.revision, src);
      await replicate(localBackend(local), s3);
      // A writer killed after writing its pending key: the record is not there, the pending key is.
      const [record] = await keys(bucket, 'streams/s/');
      await client.send(
        new CopyObjectCommand({
          Bucket: bucket,
          Key: record!.replace(/\.json$/, '.pending'),
          CopySource: `${bucket}/${record}`,
        }),
      );
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: record }));
      assert.deepEqual(await s3.streams(), [], 'readers never see a pending commit');
      // An object uploaded by a writer that has not committed yet.
      const loose = Buffer.from('uploaded, not yet committed\n');
      const looseId = (await local.objects.put({ kind: 'stream', stream: [loose] })).id;
      await s3.putObject(
        looseId,
        loose.length,
        (async function* () {
          yield loose;
        })(),
      );
      const all = await objectIds(bucket);
      await settle();
      const young = await s3.gc({ keep: 1, graceSeconds: 3600 });
      assert.deepEqual([young.removedObjects, young.keptObjects], [0, all.length]);
      assert.deepEqual(await objectIds(bucket), all);
      const old = await s3.gc({ keep: 1, graceSeconds: 0 });
      assert.deepEqual([old.removedObjects, old.removedBytes], [1, loose.length]);
      assert.deepEqual(
        await objectIds(bucket),
        all.filter((id) => id !== looseId),
      );
      assert.equal(
        await exports(dir, s3, pending.revision),
        (await local.getManifest(pending.revision)).entries.length,
        'the pending revision is whole',
      );
    });
  });

  /**
   * Stream s: r1 and r2 in the bucket. A second writer holds r3, which
   * reuses r1's motd (which r1 alone names in the bucket: gc picks it).
   */
  const revert = async (dir: string, s3: S3Store) => {
    const local = await LocalStore.open(join(dir, 'local'));
    const src = join(dir, 'src');
    const ids: string[] = [];
    for (const text of ['one', 'two']) {
      await writeTree(src, { motd: text, [`only-${text}`]: `${text} alone` });
      const r = await ingestDirectory(local, src);
      await local.commit('s', r.revision, src);
      ids.push(r.revision);
      await sleep(5);
    }
    await replicate(localBackend(local), s3);
    const writer = await LocalStore.open(join(dir, 'writer'));
    await writeTree(src, { motd: 'one', new: 'three' });
    const r3 = await ingestDirectory(writer, src);
    await writer.commit('s', r3.revision, src);
    const motd = (await writer.getManifest(r3.revision)).entries.find(
      (e) => e.path === 'etc/motd',
    )!;
    return { writer, r1: ids[0]!, r2: ids[1]!, r3: r3.revision, reused: motd.hash! };
  };

  it('keeps what a revision committed during the sweep names: the second listing finds it', async () => {
    await withTempDir(async (dir) => {
      const bucket = await newBucket();
      const s3 = new S3Store({ url: `s3://${bucket}`, endpoint, credentials });
      const { writer, r2, r3, reused } = await revert(dir, s3);
      await settle();
      const faults = new FaultyClient(endpoint);
      // The sweep's list of ids is written; hold its heartbeat, before the records are listed again.
      const held = faults.pauseAt('PutObjectCommand', 2);
      const gc = new S3Store({ url: `s3://${bucket}`, client: faults.client }).gc({
        keep: 1,
        graceSeconds: 0,
      });
      await held.reached;
      const sweeps = await keys(bucket, 'gc/');
      assert.equal(sweeps.length, 1);
      // The writer finds the reused object present, so it sends only r3's new objects, and commits.
      const up = await replicate(localBackend(writer), s3);
      assert.equal(up.revisions, 1);
      held.release();
      const r = await gc;
      assert.deepEqual(r.removedRevisions.length, 1);
      assert.deepEqual(await s3.missing([reused]), []);
      assert.deepEqual(
        (await s3.revisions('s')).map((x) => x.id),
        [r2, r3],
      );
      await wholeEverywhere(dir, s3);
      assert.deepEqual(
        (await keys(bucket, 'gc/')).filter((k) => k.endsWith('.live')),
        [],
        'the heartbeat is gone',
      );
    });
  });

  it('makes a commit that lands after the second listing wait for the sweep and fail unpublished; running it again repairs it', async () => {
    await withTempDir(async (dir) => {
      const bucket = await newBucket();
      const s3 = new S3Store({ url: `s3://${bucket}`, endpoint, credentials });
      const { writer, r2, r3, reused } = await revert(dir, s3);
      await settle();
      const faults = new FaultyClient(endpoint);
      // DeleteObjects #1 takes r1's record; #2 is the first batch of objects, after the second listing.
      const held = faults.pauseAt('DeleteObjectsCommand', 2);
      const gc = new S3Store({ url: `s3://${bucket}`, client: faults.client }).gc({
        keep: 1,
        graceSeconds: 0,
      });
      await held.reached;
      let settled = false;
      const committing = replicate(localBackend(writer), s3).finally(() => {
        settled = true;
      });
      const failed = assert.rejects(committing, (e: Error) => {
        assert.equal((e as { code?: string }).code, 'FERRY_STORE_NOT_FOUND');
        assert.match(e.message, /a gc removed 1 of its objects/);
        return true;
      });
      try {
        // The writer writes its pending key and waits on the heartbeat.
        const pending = async () =>
          (await keys(bucket, 'streams/s/')).some((k) => k.endsWith('.pending'));
        while (!settled && !(await pending())) await sleep(50);
        await sleep(1200);
        assert.ok(!settled && (await pending()), 'the writer waits while the sweep is live');
      } finally {
        held.release();
      }
      await gc;
      await failed;
      assert.deepEqual(await s3.missing([reused]), [reused], 'the sweep took it');
      assert.deepEqual(
        (await s3.revisions('s')).map((x) => x.id),
        [r2],
        'no broken revision was published',
      );
      assert.deepEqual(
        (await keys(bucket, 'streams/s/')).filter((k) => k.endsWith('.pending')),
        [],
      );
      const retry = await replicate(localBackend(writer), s3);
      assert.deepEqual([retry.revisions, retry.objects], [1, 1]);
      assert.deepEqual(
        (await s3.revisions('s')).map((x) => x.id),
        [r2, r3],
      );
      await wholeEverywhere(dir, s3);
    });
  });

  /** Where gc dies, and what it has done by then: records left (of 5), objects removed (of 4). */
  const killPoints: Array<{
    name: string;
    faults: (f: FaultyClient) => FaultyClient;
    records: number;
    removed: number;
  }> = [
    {
      name: 'before it deletes any record',
      faults: (f) => f.killAt('DeleteObjectsCommand', 1),
      records: 5,
      removed: 0,
    },
    {
      name: 'halfway through the records (one DeleteObject each)',
      faults: (f) => f.refuse('DeleteObjectsCommand').killAt('DeleteObjectCommand', 1, 'after'),
      records: 4,
      removed: 0,
    },
    {
      name: 'after the records, before any object',
      faults: (f) => f.killAt('DeleteObjectsCommand', 1, 'after'),
      records: 3,
      removed: 0,
    },
    {
      name: 'after announcing the sweep',
      faults: (f) => f.killAt('PutObjectCommand', 1, 'after'),
      records: 3,
      removed: 0,
    },
    {
      name: 'halfway through the objects (one DeleteObject each)',
      faults: (f) => f.refuse('DeleteObjectsCommand').killAt('DeleteObjectCommand', 4, 'after'),
      records: 3,
      removed: 2,
    },
    {
      name: 'after the sweep, before the leftovers',
      faults: (f) => f.killAt('ListMultipartUploadsCommand', 1),
      records: 3,
      removed: 4,
    },
  ];
  for (const point of killPoints) {
    it(`killed ${point.name}, it leaves every listed revision whole, and the next run finishes the job`, async () => {
      await withTempDir(async (dir) => {
        const bucket = await newBucket();
        const s3 = new S3Store({ url: `s3://${bucket}`, endpoint, credentials });
        const p = await populate(dir, s3);
        await s3.pin(p.ids.b1!, 'published');
        const want = await expected(p);
        const all = await objectIds(bucket);
        await settle();
        const faults = point.faults(new FaultyClient(endpoint));
        await assert.rejects(
          new S3Store({ url: `s3://${bucket}`, client: faults.client }).gc({
            keep: 1,
            graceSeconds: 0,
          }),
          /killed (before|after)/,
        );
        const left = await objectIds(bucket);
        assert.ok(
          want.kept.every((id) => left.includes(id)),
          'every kept object is there',
        );
        assert.equal(all.length - left.length, point.removed);
        assert.equal((await keys(bucket, 'streams/')).length, point.records);
        for (const name of ['b1', 'b3', 'a2']) await exports(dir, s3, p.ids[name]!);
        await wholeEverywhere(dir, s3);
        await s3.gc({ keep: 1, graceSeconds: 0 });
        assert.deepEqual(await objectIds(bucket), want.kept);
        assert.equal((await keys(bucket, 'streams/')).length, 3);
        await wholeEverywhere(dir, s3);
      });
    });
  }

  it('runs as ferry gc --store s3://… with --keep and --grace', async () => {
    await withTempDir(async (dir) => {
      const bucket = await newBucket();
      const s3 = new S3Store({ url: `s3://${bucket}/team`, endpoint, credentials });
      const p = await populate(dir, s3);
      const want = await expected(p);
      const env = {
        FERRY_S3_ENDPOINT: endpoint,
        AWS_ACCESS_KEY_ID: credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
        AWS_REGION: 'us-east-1',
      };
      const url = `s3://${bucket}/team`;
      const bad = await runCli(['gc', '--store', url, '--grace', 'soon'], env);
      assert.equal(bad.code, 2);
      await settle();
      const young = await runCli(['gc', '--keep', '1', '--store', url, '--output', 'json'], env);
      assert.equal(young.code, 0, young.stderr);
      const y = JSON.parse(young.stdout) as { removedObjects: number; removedRevisions: unknown[] };
      assert.deepEqual(
        [y.removedRevisions.length, y.removedObjects],
        [3, 0],
        'within the default hour',
      );
      const r = await runCli(
        ['gc', '--keep', '1', '--grace', '0', '--store', url, '--output', 'json'],
        env,
      );
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as Record<string, unknown>;
      assert.deepEqual(Object.keys(out).sort(), [
        'keptObjects',
        'removedBytes',
        'removedObjects',
        'removedRevisions',
      ]);
      // Unpinned this time: b1 goes too, with the objects only it names.
      const kept = new Set([...(await p.refs('b3')), ...(await p.refs('a2'))]);
      assert.equal(out.keptObjects, kept.size);
      assert.ok((out.removedObjects as number) > want.removed.length);
      assert.deepEqual((await keys(bucket, 'team/objects/')).length, kept.size);

      // image rm on S3: the revision leaves its stream (every record of it); gc then takes its objects.
      const ls = await runCli(['image', 'ls', 'base', '--store', url, '--output', 'json'], env);
      const before = JSON.parse(ls.stdout) as { revisions: { id: string }[] };
      const gone = before.revisions.at(-1)!.id;
      const rmRes = await runCli(
        ['image', 'rm', `base@${gone.slice(0, 12)}`, '--store', url, '--output', 'json'],
        env,
      );
      assert.equal(rmRes.code, 0, rmRes.stderr);
      assert.deepEqual(JSON.parse(rmRes.stdout), { stream: 'base', removed: gone });
      const after = JSON.parse(
        (await runCli(['image', 'ls', '--store', url, '--output', 'json'], env)).stdout,
      ) as {
        streams: { stream: string }[];
      };
      assert.ok(
        !after.streams.some((x) => x.stream === 'base'),
        'base had one revision left, now none',
      );
      const again = await runCli(
        ['image', 'rm', `base@${gone.slice(0, 12)}`, '--store', url, '--output', 'json'],
        env,
      );
      assert.equal(again.code, 1);
    });
  });
});
