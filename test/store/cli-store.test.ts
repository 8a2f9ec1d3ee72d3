import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { it } from 'node:test';
import { hashToken, ImageServer, LocalStore } from '../../src/store/index.js';
import { runCli } from '../helpers/cli.js';
import { withTempDir } from '../helpers/qemu.js';

it('image add, ls, show, diff and export work on a store named by URL, through the local store', async () => {
  await withTempDir(async (dir) => {
    const served = await LocalStore.open(join(dir, 'served'));
    const server = new ImageServer(served, {
      tokens: [{ name: 'ci', sha256: hashToken('cli-token'), scope: 'write' }],
    });
    const url = await server.listen();
    try {
      const env = { FERRY_TOKEN: 'cli-token', FERRY_STORE: join(dir, 'cache') };
      const src = join(dir, 'src');
      await mkdir(join(src, 'etc'), { recursive: true });
      await writeFile(join(src, 'etc/motd'), 'one\n');
      const add = await runCli(
        ['image', 'add', 'apps/web', src, '--store', url, '--output', 'json'],
        env,
      );
      assert.equal(add.code, 0, add.stderr);
      const rev1 = (JSON.parse(add.stdout) as { revision: string }).revision;
      assert.deepEqual(
        (await served.revisions('apps/web')).map((r) => r.id),
        [rev1],
        'the revision reached the server',
      );
      await writeFile(join(src, 'etc/motd'), 'two\n');
      const add2 = await runCli(
        ['image', 'add', 'apps/web', src, '--store', url, '--output', 'json'],
        env,
      );
      const rev2 = (JSON.parse(add2.stdout) as { revision: string }).revision;
      const ls = await runCli(['image', 'ls', 'apps/web', '--store', url, '--output', 'json'], env);
      assert.deepEqual(
        (JSON.parse(ls.stdout) as { revisions: Array<{ id: string }> }).revisions.map((r) => r.id),
        [rev1, rev2],
      );
      const diff = await runCli(
        [
          'image',
          'diff',
          `apps/web@${rev1.slice(0, 12)}`,
          'apps/web',
          '--store',
          url,
          '--output',
          'json',
        ],
        env,
      );
      assert.deepEqual(
        (JSON.parse(diff.stdout) as { changed: Array<{ path: string }> }).changed.map(
          (c) => c.path,
        ),
        ['etc/motd'],
      );
      const out = join(dir, 'out');
      const ex = await runCli(['image', 'export', 'apps/web', '--to', out, '--store', url], env);
      assert.equal(ex.code, 0, ex.stderr);
      assert.equal(await readFile(join(out, 'etc/motd'), 'utf8'), 'two\n');
      const gc = await runCli(['gc', '--store', url, '--output', 'json'], env);
      assert.equal(gc.code, 1);
      assert.equal(
        (JSON.parse(gc.stdout) as { error: { code: string } }).error.code,
        'FERRY_NOT_CAPABLE',
      );
      const noToken = await runCli(['image', 'ls', '--store', url, '--output', 'json'], {
        FERRY_TOKEN: '',
      });
      assert.equal(noToken.code, 1);
    } finally {
      await server.close();
    }
  });
});

it('gc --grace sets how old an unreferenced object must be before it goes', async () => {
  await withTempDir(async (dir) => {
    const store = await LocalStore.open(join(dir, 'store'));
    const orphan = await store.objects.put({ kind: 'stream', stream: [Buffer.from('orphan\n')] });
    const run = async (...extra: string[]) => {
      const r = await runCli(['gc', '--store', store.root, '--output', 'json', ...extra]);
      assert.equal(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout) as { removedObjects: number }).removedObjects;
    };
    assert.equal(await run(), 0, 'younger than the default hour');
    assert.equal(await run('--grace', '3600'), 0);
    assert.equal(await store.objects.has(orphan.id), true);
    assert.equal(await run('--grace', '0'), 1);
    assert.equal(await store.objects.has(orphan.id), false);
    for (const bad of ['-1', '1.5', '', 'soon'])
      assert.equal((await runCli(['gc', '--store', store.root, '--grace', bad])).code, 2, bad);
  });
});
