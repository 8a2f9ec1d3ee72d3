import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmod,
  link,
  mkdir,
  open,
  readFile,
  stat,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { checkExt4Map, mapPathOf, planExt4, renderFilesystem } from '../../src/render/index.js';
import { ingestDirectory, ingestImage, LocalStore, type Manifest } from '../../src/store/index.js';
import { writeXattrs, xattrsSupported } from '../../src/store/xattrs.js';
import { qemuCompare, withTempDir } from '../helpers/qemu.js';

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;

/** A tree with every kind of entry ext4 holds, and enough names for multi-block directories. */
async function makeTree(dir: string): Promise<void> {
  await mkdir(join(dir, 'etc/many'), { recursive: true });
  await mkdir(join(dir, 'usr/bin'), { recursive: true });
  await mkdir(join(dir, 'empty'), { mode: 0o711 });
  await writeFile(join(dir, 'etc/hostname'), 'ferry\n');
  await writeFile(join(dir, 'etc/empty-file'), '');
  for (let i = 0; i < 400; i++)
    await writeFile(
      join(dir, 'etc/many', `file-with-a-longish-name-${String(i).padStart(4, '0')}`),
      `n${i}\n`,
    );
  const big = Buffer.alloc(5 * 1024 * 1024 + 777);
  for (let i = 0; i < big.length; i += 512) big.writeUInt32LE(i, i);
  await writeFile(join(dir, 'usr/bin/tool'), big);
  await chmod(join(dir, 'usr/bin/tool'), 0o4755);
  await link(join(dir, 'usr/bin/tool'), join(dir, 'usr/bin/tool-alias'));
  await symlink('../etc/hostname', join(dir, 'usr/short-link'));
  await symlink(`/${'long/'.repeat(20)}target`, join(dir, 'usr/long-link'));
  execFileSync('mkfifo', [join(dir, 'usr/fifo')]);
  if (isRoot) {
    await mkdir(join(dir, 'dev'));
    execFileSync('mknod', [join(dir, 'dev/null'), 'c', '1', '3']);
    execFileSync('mknod', [join(dir, 'dev/big'), 'b', '259', '300']);
    execFileSync('chown', ['1234:5678', join(dir, 'etc/hostname')]);
  }
  if (xattrsSupported()) {
    writeXattrs(join(dir, 'etc/hostname'), { 'user.small': Buffer.from('v').toString('base64') });
    // Too big for the inode: goes to an attribute block.
    writeXattrs(join(dir, 'usr/bin/tool'), { 'user.big': Buffer.alloc(300, 7).toString('base64') });
  }
  const t = new Date('2024-02-03T04:05:06.789Z');
  await utimes(join(dir, 'etc/hostname'), t, t);
}

async function e2fsck(image: string): Promise<void> {
  try {
    await run('e2fsck', ['-fn', image]);
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    assert.fail(`e2fsck found problems:\n${e.stdout}\n${e.stderr}`);
  }
}

/** The manifest of a tree read back, as comparable lines (lost+found, which every ext4 has, aside). */
function lines(m: Manifest, withXattrs: boolean): string[] {
  return m.entries
    .filter((e) => e.path !== 'lost+found')
    .map((e) => JSON.stringify({ ...e, ...(withXattrs ? {} : { xattrs: undefined }) }));
}

async function renderTree(dir: string, store: LocalStore, src: string, out: string, base?: string) {
  const ing = await ingestDirectory(store, src);
  const m = await store.getManifest(ing.revision);
  const r = await renderFilesystem(store, ing.revision, m, {
    out,
    ...(base === undefined ? {} : { base }),
  });
  void dir;
  return { revision: ing.revision, manifest: m, result: r };
}

/** 512 KiB chunks in which two files differ (a missing tail counts as zeros). */
async function differingChunks(a: string, b: string): Promise<number> {
  const x = await readFile(a);
  const y = await readFile(b);
  const n = Math.max(x.length, y.length);
  let count = 0;
  const chunk = 512 * 1024;
  for (let off = 0; off < n; off += chunk) {
    const p = Buffer.alloc(chunk);
    const q = Buffer.alloc(chunk);
    x.subarray(off, off + chunk).copy(p);
    y.subarray(off, off + chunk).copy(q);
    if (!p.equals(q)) count++;
  }
  return count;
}

/** The map's chunk digests are the SHA-256 of the image's chunks that hold data, every one of them. */
async function assertChunkDigests(image: string): Promise<void> {
  const bytes = await readFile(image);
  const want: Record<string, string> = {};
  const chunk = 512 * 1024;
  for (let off = 0; off < bytes.length; off += chunk) {
    const c = bytes.subarray(off, off + chunk);
    if (c.some((b) => b !== 0))
      want[String(off / chunk)] = createHash('sha256').update(c).digest('base64');
  }
  const map = JSON.parse(await readFile(mapPathOf(image), 'utf8')) as {
    chunkDigests: { size: number; sha256: Record<string, string> };
  };
  assert.equal(map.chunkDigests.size, chunk);
  assert.deepEqual(map.chunkDigests.sha256, want, `chunk digests of ${image}`);
}

describe('ext4 render', () => {
  it('writes a filesystem e2fsck passes, whose tree reads back as the revision (ferry and debugfs)', async () => {
    await withTempDir(async (dir) => {
      const src = join(dir, 'src');
      await makeTree(src);
      const store = await LocalStore.open(join(dir, 'store'));
      const img = join(dir, 'root.ext4');
      const { revision, manifest, result } = await renderTree(dir, store, src, img);
      await e2fsck(img);
      assert.equal(result.bytes, (await stat(img)).size);
      assert.match(
        result.uuid,
        /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
      );
      const { stdout: dumpe2fs } = await run('dumpe2fs', ['-h', img]);
      assert.match(dumpe2fs, new RegExp(`Filesystem UUID:\\s+${result.uuid}`));
      assert.match(dumpe2fs, /metadata_csum/);
      assert.match(dumpe2fs, /has_journal/);

      // Read back with ferry's own ext4 reader: the same entries, extended attributes included.
      const back = await ingestImage(store, img);
      const readBack = await store.getManifest(back.revision);
      assert.deepEqual(lines(readBack, true), lines(manifest, true));
      assert.ok(readBack.entries.some((e) => e.path === 'lost+found' && e.type === 'dir'));
      assert.notEqual(back.revision, '');
      void revision;

      // Read back with debugfs: every directory listing, and file contents.
      const dirs = manifest.entries.filter((e) => e.type === 'dir');
      const cmds = dirs.map((d) => `ls -p /${d.path}`).join('\n');
      await writeFile(join(dir, 'cmds'), `${cmds}\n`);
      const { stdout } = await run('debugfs', ['-f', join(dir, 'cmds'), img], {
        maxBuffer: 64 << 20,
      });
      const seen = new Map<string, { mode: number; uid: number; gid: number; size: string }>();
      let current = '';
      for (const line of stdout.split('\n')) {
        const cmd = /^debugfs:\s+ls -p \/(.*)$/.exec(line);
        if (cmd !== null) {
          current = cmd[1]!;
          continue;
        }
        const f = /^\/(\d+)\/(\d+)\/(\d+)\/(\d+)\/([^/]*)\/(\d*)\/$/.exec(line);
        if (f === null || f[5] === '.' || f[5] === '..') continue;
        const path = current === '' ? f[5]! : `${current}/${f[5]}`;
        seen.set(path, {
          mode: Number.parseInt(f[2]!, 8),
          uid: Number(f[3]),
          gid: Number(f[4]),
          size: f[6]!,
        });
      }
      for (const e of manifest.entries) {
        if (e.path === '') continue;
        const s = seen.get(e.path);
        assert.ok(s, `debugfs lists ${e.path}`);
        assert.equal(s.mode & 0o7777, e.mode, e.path);
        assert.equal(s.uid, e.uid, e.path);
        assert.equal(s.gid, e.gid, e.path);
        if (e.type === 'file') assert.equal(Number(s.size), e.size, e.path);
      }
      await run('debugfs', ['-R', `dump /usr/bin/tool ${join(dir, 'tool.out')}`, img]);
      assert.deepEqual(
        await readFile(join(dir, 'tool.out')),
        await readFile(join(src, 'usr/bin/tool')),
      );
      const { stdout: xa } = await run('debugfs', ['-R', 'ea_list /usr/bin/tool', img]);
      if (xattrsSupported()) assert.match(xa, /user\.big \(300\)/);
    });
  });

  it('is deterministic: other temp directories, umask, time zone and clock give the same bytes', async () => {
    await withTempDir(async (dir) => {
      const src = join(dir, 'src');
      await makeTree(src);
      const store = await LocalStore.open(join(dir, 'store'));
      const ing = await ingestDirectory(store, src);
      const script = `
        import { LocalStore } from ${JSON.stringify(new URL('../../src/store/index.js', import.meta.url).href)};
        import { renderDisk, renderFilesystem } from ${JSON.stringify(new URL('../../src/render/index.js', import.meta.url).href)};
        const [storeDir, rev, out] = process.argv.slice(1);
        const s = await LocalStore.open(storeDir);
        const m = await s.getManifest(rev);
        await renderFilesystem(s, rev, m, { out: out + '.ext4' });
        await renderDisk(s, rev, m, { out: out + '.disk', boot: 'none' });`;
      // The second run under another clock where faketime is installed (scripts/setup.sh installs it).
      const faketime = spawnSync('sh', ['-c', 'command -v faketime']).status === 0;
      const outs = [join(dir, 'a'), join(dir, 'b')];
      for (const [i, out] of outs.entries()) {
        await mkdir(join(dir, `tmp${i}`));
        const node = [
          process.execPath,
          '--input-type=module',
          '-e',
          script,
          join(dir, 'store'),
          ing.revision,
          out,
        ];
        const argv = i === 1 && faketime ? ['faketime', '2001-02-03 04:05:06', ...node] : node;
        await run(argv[0]!, argv.slice(1), {
          env: {
            ...process.env,
            TMPDIR: join(dir, `tmp${i}`),
            TZ: i === 0 ? 'UTC' : 'Pacific/Chatham',
          },
        }).catch((error: { stderr?: string }) => assert.fail(String(error.stderr)));
        process.umask(i === 0 ? 0o022 : 0o077);
      }
      process.umask(0o022);
      for (const suffix of ['.ext4', '.disk']) {
        const [a, b] = await Promise.all(outs.map((o) => readFile(o + suffix)));
        assert.ok(a!.equals(b!), `two renders of one revision are bit-identical (${suffix})`);
        assert.equal(
          createHash('sha256')
            .update(await readFile(mapPathOf(outs[0]! + suffix)))
            .digest('hex'),
          createHash('sha256')
            .update(await readFile(mapPathOf(outs[1]! + suffix)))
            .digest('hex'),
        );
      }
    });
  });

  it('keeps unchanged files in their blocks with --base and counts the chunks that changed', async () => {
    await withTempDir(async (dir) => {
      const src = join(dir, 'src');
      await makeTree(src);
      // 16 MiB of one file: whole 2 MiB windows a patched render leaves as they are.
      await writeFile(join(src, 'usr/bin/large'), Buffer.alloc(16 * 1024 * 1024, 0x5a));
      const store = await LocalStore.open(join(dir, 'store'));
      const one = join(dir, 'one.ext4');
      const first = await renderTree(dir, store, src, one);
      // A second revision: a few files changed, one added, one removed.
      await writeFile(join(src, 'etc/hostname'), 'ferry-two\n');
      await writeFile(join(src, 'etc/many/file-with-a-longish-name-0007'), 'changed\n');
      await writeFile(join(src, 'etc/added'), 'new file\n');
      execFileSync('rm', [join(src, 'etc/many/file-with-a-longish-name-0100')]);
      const two = join(dir, 'two.ext4');
      const second = await renderTree(dir, store, src, two, one);
      await e2fsck(two);
      const back = await ingestImage(store, two);
      assert.deepEqual(
        lines(await store.getManifest(back.revision), false),
        lines(second.manifest, false),
      );
      const m1 = checkExt4Map(JSON.parse(await readFile(mapPathOf(one), 'utf8')));
      const m2 = checkExt4Map(JSON.parse(await readFile(mapPathOf(two), 'utf8')));
      assert.equal(m2.uuid, m1.uuid, 'a lineage keeps its filesystem identity');
      assert.deepEqual(
        m2.nodes['usr/bin/tool'],
        m1.nodes['usr/bin/tool'],
        'an unchanged file keeps its inode and blocks',
      );
      assert.equal(m2.nodes['etc/hostname']!.ino, m1.nodes['etc/hostname']!.ino);
      assert.equal(
        second.result.keptFiles,
        first.manifest.entries.filter((e) => e.type === 'file' && !e.link).length - 3,
      );
      // The reported count is the real one, and small next to the image.
      const real = await differingChunks(one, two);
      assert.equal(second.result.changedChunks, real);
      assert.ok(real <= 8, `only metadata and the changed files' chunks differ (${real})`);
      assert.ok(real < first.result.dataChunks / 2);
      // Through a writer that does not start from the base's bytes (qcow2): the same disk, the same count.
      const twoQ = join(dir, 'two.qcow2');
      const q = await renderFilesystem(store, second.revision, second.manifest, {
        out: twoQ,
        format: 'qcow2',
        base: one,
      });
      assert.equal(q.changedChunks, real);
      assert.equal((await qemuCompare(two, twoQ, 'raw', 'qcow2')).identical, true);
      // Both maps carry the digest of every data chunk, the patched render's included
      // (windows it left as the base had them keep the base's digests).
      await assertChunkDigests(one);
      await assertChunkDigests(two);
      // The base's map alone: the same files keep their blocks, every block is written,
      // and the digests say how many chunks differ from the first image, exactly.
      const twoM = join(dir, 'two-from-map.ext4');
      const fromMap = await renderFilesystem(store, second.revision, second.manifest, {
        out: twoM,
        base: mapPathOf(one),
      });
      await e2fsck(twoM);
      assert.equal(fromMap.uuid, second.result.uuid);
      assert.equal(fromMap.keptFiles, second.result.keptFiles);
      assert.equal(fromMap.changedChunks, await differingChunks(one, twoM));
      assert.ok(fromMap.changedChunks <= real + 2, 'freed blocks now zero add at most a little');
      const backM = await ingestImage(store, twoM);
      assert.deepEqual(
        lines(await store.getManifest(backM.revision), false),
        lines(second.manifest, false),
      );
      await assertChunkDigests(twoM);
      // A full render of the same revision is independent of the base, and valid too.
      const full = join(dir, 'full.ext4');
      const r = await renderFilesystem(store, second.revision, second.manifest, { out: full });
      await e2fsck(full);
      assert.notEqual(r.uuid, second.result.uuid);
    });
  });

  it('clones the base where the file system has reflinks and writes only the windows that change', async (t) => {
    if (!isRoot) return t.skip('needs root to loop-mount a reflink file system');
    await withTempDir(async (dir) => {
      const fsImage = join(dir, 'reflink.xfs');
      const mnt = join(dir, 'mnt');
      await mkdir(mnt);
      execFileSync('truncate', ['-s', '400M', fsImage]);
      execFileSync('mkfs.xfs', ['-q', '-f', '-m', 'reflink=1', fsImage]);
      if (spawnSync('mount', ['-o', 'loop', fsImage, mnt]).status !== 0)
        return t.skip('loop mounts are not available here');
      try {
        const src = join(dir, 'src');
        await makeTree(src);
        await writeFile(join(src, 'usr/bin/large'), Buffer.alloc(24 * 1024 * 1024, 0x5a));
        const store = await LocalStore.open(join(dir, 'store'));
        const one = join(mnt, 'one.ext4');
        await renderTree(dir, store, src, one);
        const used = () =>
          Number(
            execFileSync('df', ['--output=used', '-B1', mnt], { encoding: 'utf8' }).split('\n')[1],
          );
        const before = used();
        await writeFile(join(src, 'etc/hostname'), 'ferry-two\n');
        const two = join(mnt, 'two.ext4');
        const second = await renderTree(dir, store, src, two, one);
        await e2fsck(two);
        // The clone shares the base's blocks: the new image took a fraction of its size.
        const grew = used() - before;
        assert.ok(grew < (await stat(two)).size / 4, `the second image took ${grew} bytes`);
        assert.equal(second.result.changedChunks, await differingChunks(one, two));
        // Windows left as the base had them keep the base's digests in the new map.
        await assertChunkDigests(two);
      } finally {
        execFileSync('umount', [mnt]);
      }
    });
  });

  it('fails with coded errors on a corrupted object, a bad base and a size too small, leaving no image', async () => {
    await withTempDir(async (dir) => {
      const src = join(dir, 'src');
      await makeTree(src);
      const store = await LocalStore.open(join(dir, 'store'));
      const ing = await ingestDirectory(store, src);
      const m = await store.getManifest(ing.revision);
      const out = join(dir, 'out.ext4');
      await assert.rejects(renderFilesystem(store, ing.revision, m, { out, size: 1024 * 1024 }), {
        code: 'FERRY_RENDER_LIMIT',
      });
      await writeFile(join(dir, 'not-a-render.img'), Buffer.alloc(65536));
      await assert.rejects(
        renderFilesystem(store, ing.revision, m, { out, base: join(dir, 'not-a-render.img') }),
        {
          code: 'FERRY_RENDER_INPUT',
        },
      );
      await writeFile(
        mapPathOf(join(dir, 'not-a-render.img')),
        JSON.stringify({ format: 'ferry-ext4-map', version: 1, blocksCount: -1 }),
      );
      await assert.rejects(
        renderFilesystem(store, ing.revision, m, { out, base: join(dir, 'not-a-render.img') }),
        {
          code: 'FERRY_RENDER_INPUT',
        },
      );
      // A map alone must carry chunk digests, well formed.
      const good = join(dir, 'good.ext4');
      await renderFilesystem(store, ing.revision, m, { out: good });
      const goodMap = JSON.parse(await readFile(mapPathOf(good), 'utf8')) as Record<
        string,
        unknown
      >;
      const noChunks = join(dir, 'old.ferry-map.json');
      await writeFile(noChunks, JSON.stringify({ ...goodMap, chunkDigests: undefined }));
      const badChunks = join(dir, 'bad.ferry-map.json');
      await writeFile(
        badChunks,
        JSON.stringify({ ...goodMap, chunkDigests: { size: 524288, sha256: { '99999999': 'x' } } }),
      );
      for (const base of [noChunks, badChunks, join(dir, 'missing.json')])
        await assert.rejects(renderFilesystem(store, ing.revision, m, { out, base }), {
          code: 'FERRY_RENDER_INPUT',
        });
      // A map too big to read is refused before it is read (a sparse file: no disk used).
      const huge = join(dir, 'huge.ferry-map.json');
      execFileSync('truncate', ['-s', '300M', huge]);
      await assert.rejects(renderFilesystem(store, ing.revision, m, { out, base: huge }), {
        code: 'FERRY_RENDER_LIMIT',
      });
      await assert.rejects(stat(out), { code: 'ENOENT' });
      const tool = m.entries.find((e) => e.path === 'usr/bin/tool')!;
      const path = store.objects.pathOf(tool.hash!);
      await chmod(path, 0o644);
      const fh = await open(path, 'r+');
      await fh.write(Buffer.from([0xff]), 0, 1, 3 * 1024 * 1024);
      await fh.close();
      await assert.rejects(renderFilesystem(store, ing.revision, m, { out }), {
        code: 'FERRY_STORE_OBJECT_CORRUPT',
      });
      await assert.rejects(stat(out), { code: 'ENOENT' });
      await assert.rejects(stat(mapPathOf(out)), { code: 'ENOENT' });
    });
  });

  it('lays out files of more than four extents with extent leaf blocks e2fsck accepts', async () => {
    await withTempDir(async (dir) => {
      // A 640 MiB file crosses five block groups: five runs, so an extent leaf.
      const hash = 'a'.repeat(128);
      const size = 5 * 32768 * 4096 + 1;
      const m: Manifest = {
        version: 1,
        entries: [
          { path: '', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: '0', size: 0 },
          { path: 'big', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: '0', size, hash },
        ],
      };
      const plan = planExt4(m, { revision: 'r' });
      assert.ok(plan.map.nodes.big!.leaves.length === 1);
      // Metadata only: e2fsck does not read file contents.
      const img = join(dir, 'meta.ext4');
      const fh = await open(img, 'w');
      await fh.truncate(plan.blocksCount * 4096);
      for (const [b, data] of plan.meta) await fh.write(data, 0, data.length, b * 4096);
      await fh.close();
      await e2fsck(img);
      const { stdout } = await run('debugfs', ['-R', 'stat /big', img]);
      assert.match(stdout, /Size: 671088641/);
    });
  });
});
