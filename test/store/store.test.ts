import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmod,
  link,
  lstat,
  lutimes,
  mkdir,
  readdir,
  readFile,
  readlink,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  diffManifests,
  exportDirectory,
  ingestDirectory,
  LocalStore,
  type Manifest,
  parseManifest,
} from '../../src/store/index.js';
import { writeXattrs, xattrsSupported } from '../../src/store/xattrs.js';
import { withTempDir } from '../helpers/qemu.js';

/** A tree with every kind of entry the store keeps. */
async function makeTree(dir: string, variant = 0): Promise<void> {
  await mkdir(join(dir, 'etc/ssl'), { recursive: true });
  await mkdir(join(dir, 'usr/bin'), { recursive: true });
  await mkdir(join(dir, 'empty'), { mode: 0o700 });
  await writeFile(join(dir, 'etc/hostname'), `host-${variant}\n`);
  await writeFile(join(dir, 'etc/ssl/cert.pem'), 'x'.repeat(100_000));
  await writeFile(join(dir, 'usr/bin/tool'), Buffer.alloc(3 * 1024 * 1024, 7));
  await chmod(join(dir, 'usr/bin/tool'), 0o4755);
  await writeFile(join(dir, 'usr/bin/empty-file'), '');
  await link(join(dir, 'usr/bin/tool'), join(dir, 'usr/bin/tool-alias'));
  await symlink('/etc/passwd', join(dir, 'etc/absolute-link'));
  await symlink('../etc/hostname', join(dir, 'usr/relative-link'));
  execFileSync('mkfifo', [join(dir, 'usr/fifo')]);
  if (process.getuid?.() === 0) {
    // Device nodes need root to create, and export recreates them as root.
    await mkdir(join(dir, 'dev'));
    execFileSync('mknod', [join(dir, 'dev/null'), 'c', '1', '3']);
    execFileSync('mknod', [join(dir, 'dev/loop9'), 'b', '7', '9']);
  }
  if (xattrsSupported()) {
    writeXattrs(join(dir, 'usr/bin/tool'), {
      'user.ferry.test': Buffer.from([0, 1, 2, 255]).toString('base64'),
    });
    writeXattrs(join(dir, 'etc'), {
      'user.ferry.dir': Buffer.from('on a directory').toString('base64'),
    });
  }
  // Every time fixed, deepest first, so two trees built apart differ only where their contents do.
  const fix = async (abs: string): Promise<void> => {
    const st = await lstat(abs);
    if (st.isDirectory()) for (const n of await readdir(abs)) await fix(join(abs, n));
    await lutimes(abs, FIXED, FIXED);
  };
  await fix(dir);
  await utimes(
    join(dir, 'etc/hostname'),
    new Date('2020-01-02T03:04:05Z'),
    new Date('2020-01-02T03:04:05Z'),
  );
}

const FIXED = new Date('2024-05-06T07:08:09Z');

/** Everything about a tree that export must reproduce: type, mode, owner, size, contents, link target, link count, mtime (ms). */
async function describeTree(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (abs: string, rel: string): Promise<void> => {
    const st = await lstat(abs);
    let extra = '';
    if (st.isFile())
      extra = createHash('sha256')
        .update(await readFile(abs))
        .digest('hex');
    else if (st.isSymbolicLink()) extra = await readlink(abs);
    else if (st.isCharacterDevice() || st.isBlockDevice()) extra = `rdev ${st.rdev}`;
    const mtime = st.isSymbolicLink() || st.isDirectory() ? '' : String(Math.floor(st.mtimeMs));
    out.push(
      `${rel} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.isFile() ? st.size : ''} ${st.nlink} ${mtime} ${extra}`,
    );
    if (st.isDirectory())
      for (const n of (await readdir(abs)).sort()) await walk(join(abs, n), `${rel}/${n}`);
  };
  await walk(root, '');
  return out;
}

describe('image store', () => {
  it('ingests a tree and exports it exactly; the same tree gets the same revision and stores nothing new', async () => {
    await withTempDir(async (dir) => {
      const src = join(dir, 'src');
      await makeTree(src);
      const store = await LocalStore.open(join(dir, 'store'));
      const a = await ingestDirectory(store, src);
      assert.equal(a.files, 5);
      assert.equal(a.bytes, 3 * 1024 * 1024 + 100_000 + 7);
      // Three distinct contents (tool and its hard link share one) plus the empty file, plus the manifest.
      assert.equal(a.newObjects, 5);
      const c1 = await store.commit('base/test', a.revision, src);
      assert.equal(c1.unchanged, false);
      const b = await ingestDirectory(store, src);
      assert.equal(b.revision, a.revision);
      assert.equal(b.newObjects, 0);
      assert.equal(b.newBytes, 0);
      assert.equal((await store.commit('base/test', b.revision, src)).unchanged, true);
      assert.equal((await store.revisions('base/test')).length, 1);

      const m = await store.getManifest(a.revision);
      const alias = m.entries.find((e) => e.path === 'usr/bin/tool-alias');
      const tool = m.entries.find((e) => e.path === 'usr/bin/tool');
      // The first path in manifest order holds the contents; the other links to it.
      assert.equal(tool?.link, undefined);
      assert.equal(alias?.link, 'usr/bin/tool');
      assert.equal(tool?.mode, 0o4755);
      assert.equal(m.entries.find((e) => e.path === 'etc/absolute-link')?.target, '/etc/passwd');
      assert.equal(m.entries.find((e) => e.path === 'etc/hostname')?.mtime, '1577934245000000000');
      if (xattrsSupported()) {
        assert.deepEqual(tool?.xattrs, { 'user.ferry.test': 'AAEC/w==' });
        assert.equal(
          m.entries.find((e) => e.path === 'etc')?.xattrs?.['user.ferry.dir'],
          Buffer.from('on a directory').toString('base64'),
        );
      }

      const out = join(dir, 'out');
      const r = await exportDirectory(store, m, out);
      assert.equal(r.bytes, a.bytes);
      assert.deepEqual(await describeTree(out), await describeTree(src));
    });
  });

  it('stores contents once across streams and reports what a changed revision adds', async () => {
    await withTempDir(async (dir) => {
      const store = await LocalStore.open(join(dir, 'store'));
      const one = join(dir, 'one');
      const two = join(dir, 'two');
      await makeTree(one, 1);
      await makeTree(two, 2);
      const a = await ingestDirectory(store, one);
      await store.commit('app/one', a.revision, one);
      const b = await ingestDirectory(store, two);
      await store.commit('app/two', b.revision, two);
      assert.notEqual(a.revision, b.revision);
      // Only etc/hostname differs ("host-1\n" vs "host-2\n"), plus the manifest.
      assert.equal(b.newObjects, 2);
      assert.equal(b.newBytes, 7);
      const d = diffManifests(
        await store.getManifest(a.revision),
        await store.getManifest(b.revision),
      );
      assert.deepEqual(
        d.changed.map((c) => c.path),
        ['etc/hostname'],
      );
      assert.deepEqual(d.added, []);
      assert.deepEqual(d.removed, []);
      assert.equal(d.changedBytes, 7);
      assert.deepEqual(await store.streams(), ['app/one', 'app/two']);
    });
  });

  it('stores a large file in one pass: new, known, changed while read, or swapped for a symlink', async () => {
    await withTempDir(async (dir) => {
      const store = await LocalStore.open(join(dir, 'store'));
      const big = join(dir, 'big');
      // Not a multiple of the 1 MiB read size, and different in every chunk.
      const bytes = Buffer.alloc(5 * 1024 * 1024 + 12345);
      for (let i = 0; i < bytes.length; i += 4096) bytes.writeUInt32LE(i, i);
      await writeFile(big, bytes);
      const want = createHash('sha512').update(bytes).digest('hex');
      const tmpFiles = async () => readdir(join(dir, 'store/tmp')).catch(() => []);
      const first = await store.objects.put({ kind: 'file', path: big, size: bytes.length });
      assert.deepEqual(first, { id: want, size: bytes.length, added: true });
      assert.deepEqual(await readFile(store.objects.pathOf(want)), bytes);
      const again = await store.objects.put({ kind: 'file', path: big, size: bytes.length });
      assert.deepEqual(again, { id: want, size: bytes.length, added: false });
      // The size the walk saw is not the size read: refused, nothing left behind.
      await assert.rejects(store.objects.put({ kind: 'file', path: big, size: bytes.length - 1 }), {
        code: 'FERRY_STORE_SOURCE_UNSUPPORTED',
      });
      await assert.rejects(store.objects.put({ kind: 'file', path: big, size: bytes.length + 1 }), {
        code: 'FERRY_STORE_SOURCE_UNSUPPORTED',
      });
      // A file replaced by a symlink after the walk is not followed.
      await symlink(big, join(dir, 'swapped'));
      await assert.rejects(
        store.objects.put({ kind: 'file', path: join(dir, 'swapped'), size: bytes.length }),
        { code: 'FERRY_IO' },
      );
      const ac = new AbortController();
      ac.abort();
      await assert.rejects(
        store.objects.put({ kind: 'file', path: big, size: bytes.length }, undefined, ac.signal),
        { code: 'FERRY_ABORTED' },
      );
      assert.deepEqual(await tmpFiles(), []);
      const ids: string[] = [];
      for await (const id of store.objects.list()) ids.push(id);
      assert.deepEqual(ids, [want]);
    });
  });

  it('takes the previous revision as a hint only: a file changed behind the same size and mtime still gets its new hash', async () => {
    await withTempDir(async (dir) => {
      const src = join(dir, 'src');
      await makeTree(src);
      const store = await LocalStore.open(join(dir, 'store'));
      const first = await ingestDirectory(store, src);
      const previous = await store.getManifest(first.revision);
      const again = await ingestDirectory(store, src, { previous });
      assert.equal(again.revision, first.revision);
      assert.equal(again.newObjects, 0);
      // Same size, same mtime, other bytes: the hint says "stored", the hash says otherwise.
      const tool = join(src, 'usr/bin/tool');
      const st = await lstat(tool);
      const bytes = await readFile(tool);
      bytes[1000] = (bytes[1000] ?? 0) ^ 0xff;
      await writeFile(tool, bytes);
      await utimes(tool, st.atime, st.mtime);
      const third = await ingestDirectory(store, src, { previous });
      assert.notEqual(third.revision, first.revision);
      assert.equal(third.newObjects, 2, 'the changed file and the manifest');
      const m = await store.getManifest(third.revision);
      assert.equal(
        m.entries.find((e) => e.path === 'usr/bin/tool')!.hash,
        createHash('sha512').update(bytes).digest('hex'),
      );
      assert.deepEqual(await readdir(join(dir, 'store/tmp')).catch(() => []), []);
    });
  });

  it('detects a corrupted object on read and never writes it out as data', async () => {
    await withTempDir(async (dir) => {
      const src = join(dir, 'src');
      await makeTree(src);
      const store = await LocalStore.open(join(dir, 'store'));
      const a = await ingestDirectory(store, src);
      const m = await store.getManifest(a.revision);
      const cert = m.entries.find((e) => e.path === 'etc/ssl/cert.pem')!;
      const path = store.objects.pathOf(cert.hash!);
      await chmod(path, 0o644);
      const bytes = await readFile(path);
      bytes.writeUInt8(bytes.readUInt8(50_000) ^ 1, 50_000);
      await writeFile(path, bytes);
      await assert.rejects(exportDirectory(store, m, join(dir, 'out')), {
        code: 'FERRY_STORE_OBJECT_CORRUPT',
      });
      // A manifest whose object is corrupted cannot even be read.
      const mpath = store.objects.pathOf(a.revision);
      await chmod(mpath, 0o644);
      await writeFile(mpath, (await readFile(mpath, 'utf8')).replace('"mode":493', '"mode":511'));
      await assert.rejects(store.getManifest(a.revision), { code: 'FERRY_STORE_OBJECT_CORRUPT' });
    });
  });

  it('refuses hostile manifests with a coded error', () => {
    const root = { path: '', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: '0', size: 0 };
    const dir = (path: string) => ({ ...root, path });
    const file = (path: string, extra: object = {}) => ({
      ...root,
      path,
      type: 'file',
      mode: 0o644,
      size: 1,
      hash: 'a'.repeat(128),
      ...extra,
    });
    const cases: Record<string, object[]> = {
      'parent escape': [root, file('../etc/passwd')],
      absolute: [root, file('/etc/passwd')],
      'dot component': [root, dir('a'), file('a/./b')],
      'empty component': [root, dir('a'), file('a//b')],
      duplicate: [root, file('a'), file('a')],
      unsorted: [root, file('b'), file('a')],
      'no parent': [root, file('a/b')],
      'write through a symlink': [
        root,
        { ...root, path: 'a', type: 'symlink', target: '/etc', mode: 0o777 },
        file('a/passwd'),
      ],
      'link to nothing': [root, file('a', { link: 'zzz' })],
      'link with other contents': [
        root,
        file('a'),
        file('b', { link: 'a', hash: 'b'.repeat(128) }),
      ],
      'bad hash': [root, file('a', { hash: 'xyz' })],
      'huge mode': [root, file('a', { mode: 0o170777 })],
      'negative uid': [root, file('a', { uid: -1 })],
      'device without numbers': [root, { ...root, path: 'sda', type: 'block' }],
      'unknown type': [root, { ...root, path: 's', type: 'socket' }],
      'root not a dir': [file('')],
      'NUL in a name': [root, file('a\0b')],
    };
    for (const [name, entries] of Object.entries(cases)) {
      const bytes = Buffer.from(JSON.stringify({ version: 1, entries }));
      assert.throws(() => parseManifest(bytes), { code: 'FERRY_STORE_MANIFEST_INVALID' }, name);
    }
    assert.throws(() => parseManifest(Buffer.from('{')), { code: 'FERRY_STORE_MANIFEST_INVALID' });
    const ok = parseManifest(
      Buffer.from(JSON.stringify({ version: 1, entries: [root, dir('a'), file('a/b')] })),
    );
    assert.equal(ok.manifest.entries.length, 3);
  });

  it('keeps N revisions per stream on gc, never a pinned one, and removes only unreferenced objects', async () => {
    await withTempDir(async (dir) => {
      const store = await LocalStore.open(join(dir, 'store'));
      const ids: string[] = [];
      for (let v = 0; v < 3; v++) {
        const src = join(dir, `v${v}`);
        await makeTree(src, v);
        const r = await ingestDirectory(store, src);
        await store.commit('s', r.revision, src);
        ids.push(r.revision);
      }
      await store.pin(ids[0]!, 'published to local/us-east-1');
      const dry = await store.gc({ keep: 1, graceSeconds: 0, dryRun: true });
      assert.deepEqual(dry.removedRevisions, [{ stream: 's', id: ids[1] }]);
      assert.equal((await store.revisions('s')).length, 3, 'a dry run changes nothing');
      const r = await store.gc({ keep: 1, graceSeconds: 0 });
      assert.deepEqual(r.removedRevisions, [{ stream: 's', id: ids[1] }]);
      // v1's hostname contents and its manifest.
      assert.equal(r.removedObjects, 2);
      assert.deepEqual(
        (await store.revisions('s')).map((x) => x.id),
        [ids[0], ids[2]],
      );
      for (const id of [ids[0]!, ids[2]!]) {
        await exportDirectory(
          store,
          await store.getManifest(id),
          join(dir, `out-${id.slice(0, 8)}`),
        );
      }
      // Young objects are spared: an ingest may be about to commit them.
      await store.unpin(ids[0]!);
      const young = await store.gc({ keep: 1 });
      assert.equal(young.removedObjects, 0);
      assert.equal(young.removedRevisions.length, 1);
    });
  });

  it('survives gc killed midway: every kept revision stays whole, and the next gc finishes', async () => {
    await withTempDir(async (dir) => {
      const storeDir = join(dir, 'store');
      const store = await LocalStore.open(storeDir);
      const keepSrc = join(dir, 'keep');
      await makeTree(keepSrc, 99);
      const k = await ingestDirectory(store, keepSrc);
      await store.commit('keep', k.revision, keepSrc);
      // Kill it at several points: before, during and (maybe) after the sweep.
      for (const [trial, delay] of [80, 160, 240, 320].entries()) {
        // Many unreferenced objects, so the sweep takes a while.
        const junk = join(dir, `junk${trial}`);
        await mkdir(junk);
        for (let i = 0; i < 1500; i++) await writeFile(join(junk, `f${i}`), `junk ${trial} ${i}`);
        const j = await ingestDirectory(store, junk);
        await store.commit('junk', j.revision, junk);
        await store.removeRevision('junk', j.revision);
        const script = `import { LocalStore } from ${JSON.stringify(new URL('../../src/store/index.js', import.meta.url).href)};
          const s = await LocalStore.open(${JSON.stringify(storeDir)});
          await s.gc({ graceSeconds: 0 });`;
        const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
          stdio: 'ignore',
        });
        await new Promise((r) => setTimeout(r, delay));
        child.kill('SIGKILL');
        await new Promise((r) => child.once('exit', r));
        // The killed GC may have left its lock; the next writer takes it over (dead pid).
        const out = join(dir, `out${trial}`);
        await exportDirectory(store, await store.getManifest(k.revision), out);
        assert.deepEqual(await describeTree(out), await describeTree(keepSrc), `trial ${trial}`);
      }
      const again = await store.gc({ graceSeconds: 0 });
      let left = 0;
      for await (const _ of store.objects.list()) left++;
      assert.equal(left, again.keptObjects);
      assert.equal(left, 5, 'the kept revision: four contents and its manifest');
    });
  });

  it('records every one of concurrent commits to the same stream', async () => {
    await withTempDir(async (dir) => {
      const store = await LocalStore.open(join(dir, 'store'));
      const revs: string[] = [];
      for (let v = 0; v < 8; v++) {
        const m: Manifest = {
          version: 1,
          entries: [{ path: '', type: 'dir', mode: 0o755, uid: v, gid: 0, mtime: '0', size: 0 }],
        };
        revs.push((await store.putManifest(m)).id);
      }
      // Separate store handles, as separate processes would have.
      const handles = await Promise.all(revs.map(() => LocalStore.open(join(dir, 'store'))));
      await Promise.all(revs.map((id, i) => handles[i]!.commit('busy', id, null)));
      const got = (await store.revisions('busy')).map((r) => r.id).sort();
      assert.deepEqual(got, [...revs].sort());
    });
  });

  it('refuses to export into a non-empty directory and names bad streams', async () => {
    await withTempDir(async (dir) => {
      const src = join(dir, 'src');
      await makeTree(src);
      const store = await LocalStore.open(join(dir, 'store'));
      const a = await ingestDirectory(store, src);
      const m = await store.getManifest(a.revision);
      await assert.rejects(exportDirectory(store, m, src), { code: 'FERRY_STORE_EXPORT_UNSAFE' });
      for (const bad of ['../x', 'Upper', 'a//b', '', 'a/../b', '/abs']) {
        await assert.rejects(
          store.commit(bad, a.revision, null),
          { code: 'FERRY_STORE_NAME_INVALID' },
          bad,
        );
      }
      await assert.rejects(store.resolve('nope'), { code: 'FERRY_STORE_NOT_FOUND' });
    });
  });
});
