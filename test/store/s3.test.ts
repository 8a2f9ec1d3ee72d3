/**
 * The S3 store against a real S3 server: OpenStack Swift with s3api, started
 * on loopback by scripts/swift-s3.sh (Debian's swift packages).
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import {
  ingestDirectory,
  LocalStore,
  localBackend,
  replicate,
  S3Store,
} from '../../src/store/index.js';
import { withTempDir } from '../helpers/qemu.js';
import { credentials, startSwift, swiftSkip } from '../helpers/swift.js';

async function tree(dir: string, n: number, variant: number): Promise<void> {
  await mkdir(join(dir, 'etc'), { recursive: true });
  for (let i = 0; i < n; i++)
    await writeFile(
      join(dir, 'etc', `f${i}`),
      `file ${i} of variant ${i === 0 ? variant : 0}\n`.repeat(100),
    );
}

describe('S3 store on Swift s3api', { skip: swiftSkip, timeout: 300_000 }, () => {
  let endpoint = '';
  let client: S3Client;
  let newBucket: () => Promise<string>;
  before(() => {
    ({ endpoint, client, newBucket } = startSwift());
  });

  it('replicates into a bucket and back, sending only what is missing', async () => {
    await withTempDir(async (dir) => {
      const bucket = await newBucket();
      const s3 = new S3Store({ url: `s3://${bucket}/team/images`, endpoint, credentials });
      const local = await LocalStore.open(join(dir, 'local'));
      const src = join(dir, 'src');
      await tree(src, 20, 1);
      const a = await ingestDirectory(local, src);
      await local.commit('base/debian', a.revision, src);
      const up = await replicate(localBackend(local), s3);
      assert.deepEqual([up.revisions, up.objects], [1, 21]);
      assert.deepEqual(await s3.streams(), ['base/debian']);
      assert.deepEqual(
        (await s3.revisions('base/debian')).map((r) => r.id),
        [a.revision],
      );
      assert.deepEqual([(await replicate(localBackend(local), s3)).objects], [0]);
      // A second revision: one file changed.
      await tree(src, 20, 2);
      const b = await ingestDirectory(local, src);
      await local.commit('base/debian', b.revision, src);
      const delta = await replicate(localBackend(local), s3);
      assert.deepEqual([delta.revisions, delta.objects, delta.present], [1, 2, 19]);
      const mirror = await LocalStore.open(join(dir, 'mirror'));
      const down = await replicate(s3, localBackend(mirror));
      assert.equal(down.revisions, 2);
      assert.deepEqual(
        (await mirror.revisions('base/debian')).map((r) => r.id),
        [a.revision, b.revision],
      );
    });
  });

  it('keeps every revision of concurrent writers to one stream', async () => {
    await withTempDir(async (dir) => {
      const bucket = await newBucket();
      const url = `s3://${bucket}`;
      const writers = await Promise.all(
        [0, 1, 2].map(async (i) => {
          const s = await LocalStore.open(join(dir, `w${i}`));
          const d = join(dir, `t${i}`);
          await tree(d, 3, 10 + i);
          const r = await ingestDirectory(s, d);
          await s.commit('shared', r.revision, d);
          return { s, id: r.revision };
        }),
      );
      await Promise.all(
        writers.map(({ s }) =>
          replicate(localBackend(s), new S3Store({ url, endpoint, credentials })),
        ),
      );
      const got = (await new S3Store({ url, endpoint, credentials }).revisions('shared'))
        .map((r) => r.id)
        .sort();
      assert.deepEqual(got, writers.map((w) => w.id).sort());
    });
  });

  it('refuses an object whose bytes in the bucket do not match its name', async () => {
    await withTempDir(async (dir) => {
      const bucket = await newBucket();
      const s3 = new S3Store({ url: `s3://${bucket}`, endpoint, credentials });
      const local = await LocalStore.open(join(dir, 'local'));
      const src = join(dir, 'src');
      await tree(src, 2, 3);
      const a = await ingestDirectory(local, src);
      await local.commit('s', a.revision, src);
      await replicate(localBackend(local), s3);
      const m = await local.getManifest(a.revision);
      const victim = m.entries.find((e) => e.path === 'etc/f1')!.hash!;
      await client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: `objects/${victim.slice(0, 2)}/${victim.slice(2)}`,
          Body: 'tampered',
          ContentLength: 8,
        }),
      );
      const mirror = await LocalStore.open(join(dir, 'mirror'));
      await assert.rejects(replicate(s3, localBackend(mirror)), {
        code: 'FERRY_STORE_OBJECT_CORRUPT',
      });
      assert.equal(await mirror.objects.has(victim), false);
      assert.deepEqual(await mirror.streams(), []);
      // And a wrong secret is refused, with a code.
      const bad = new S3Store({
        url: `s3://${bucket}`,
        endpoint,
        credentials: { accessKeyId: 'test:tester', secretAccessKey: 'wrong' },
      });
      await assert.rejects(bad.streams(), { code: 'FERRY_UNAUTHORIZED' });
    });
  });
});
