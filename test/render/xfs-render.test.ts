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
import { mapPathOf, renderDisk, renderFilesystem } from '../../src/render/index.js';
import { writeRender } from '../../src/render/write-render.js';
import { planXfs } from '../../src/render/xfs/plan-xfs.js';
import { ingestDirectory, ingestImage, LocalStore, type Manifest } from '../../src/store/index.js';
import { writeXattrs, xattrsSupported } from '../../src/store/xattrs.js';
import { withTempDir } from '../helpers/qemu.js';

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;
const haveXfsprogs =
  spawnSync('sh', ['-c', 'command -v xfs_repair && command -v xfs_db']).status === 0;

/** A POSIX ACL in the kernel's xattr form: user::rwx user:1000:r-x group::r-x mask::r-x other::r--. */
function vfsAcl(): string {
  const entries: [number, number, number][] = [
    [0x01, 7, 0xffffffff],
    [0x02, 5, 1000],
    [0x04, 5, 0xffffffff],
    [0x10, 5, 0xffffffff],
    [0x20, 4, 0xffffffff],
  ];
  const b = Buffer.alloc(4 + entries.length * 8);
  b.writeUInt32LE(2, 0);
  entries.forEach(([tag, perm, id], i) => {
    b.writeUInt16LE(tag, 4 + i * 8);
    b.writeUInt16LE(perm, 6 + i * 8);
    b.writeUInt32LE(id, 8 + i * 8);
  });
  return b.toString('base64');
}

/**
 * A tree with every kind of entry, directories in each XFS form (short,
 * block, leaf; node with `many` >= 2000), symlinks inline and remote, and
 * attributes in the inode and in a leaf block, in every namespace.
 */
async function makeTree(dir: string, many = 400): Promise<void> {
  await mkdir(join(dir, 'etc/many'), { recursive: true });
  await mkdir(join(dir, 'usr/bin'), { recursive: true });
  await mkdir(join(dir, 'mid'));
  await mkdir(join(dir, 'empty'), { mode: 0o711 });
  await writeFile(join(dir, 'etc/hostname'), 'ferry\n');
  await writeFile(join(dir, 'etc/empty-file'), '');
  for (let i = 0; i < many; i++)
    await writeFile(
      join(dir, 'etc/many', `file-with-a-longish-name-${String(i).padStart(5, '0')}`),
      `n${i}\n`,
    );
  for (let i = 0; i < 40; i++) await writeFile(join(dir, 'mid', `entry-${i}`), '');
  const big = Buffer.alloc(5 * 1024 * 1024 + 777);
  for (let i = 0; i < big.length; i += 512) big.writeUInt32LE(i, i);
  await writeFile(join(dir, 'usr/bin/tool'), big);
  await chmod(join(dir, 'usr/bin/tool'), 0o4755);
  await link(join(dir, 'usr/bin/tool'), join(dir, 'usr/bin/tool-alias'));
  await symlink('../etc/hostname', join(dir, 'usr/short-link'));
  // Longer than the inode's literal area: a remote symlink block.
  await symlink(`/${'long/'.repeat(80)}target`, join(dir, 'usr/long-link'));
  execFileSync('mkfifo', [join(dir, 'usr/fifo')]);
  if (isRoot) {
    await mkdir(join(dir, 'dev'));
    execFileSync('mknod', [join(dir, 'dev/null'), 'c', '1', '3']);
    execFileSync('mknod', [join(dir, 'dev/big'), 'b', '259', '300']);
    execFileSync('chown', ['1234:5678', join(dir, 'etc/hostname')]);
  }
  if (xattrsSupported()) {
    writeXattrs(join(dir, 'etc/hostname'), { 'user.small': Buffer.from('v').toString('base64') });
    // A value too big for the short form: an attribute leaf block.
    const tool: Record<string, string> = {
      'user.big': Buffer.alloc(300, 7).toString('base64'),
    };
    if (isRoot) {
      tool['trusted.t'] = Buffer.from('tv').toString('base64');
      tool['security.selinux'] = Buffer.from('system_u:object_r:bin_t:s0\0').toString('base64');
    }
    writeXattrs(join(dir, 'usr/bin/tool'), tool);
    if (isRoot) {
      // Devices and fifos keep their attribute fork right after the device number.
      writeXattrs(join(dir, 'dev/null'), { 'trusted.dev': Buffer.from('d').toString('base64') });
      writeXattrs(join(dir, 'usr/fifo'), {
        'security.selinux': Buffer.from('system_u:object_r:fifo_t:s0\0').toString('base64'),
      });
    }
    writeXattrs(join(dir, 'etc/many'), {
      'system.posix_acl_access': vfsAcl(),
      'system.posix_acl_default': vfsAcl(),
    });
  }
  const t = new Date('2024-02-03T04:05:06.789Z');
  await utimes(join(dir, 'etc/hostname'), t, t);
}

async function xfsRepair(image: string): Promise<void> {
  try {
    await run('xfs_repair', ['-n', '-f', image]);
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    assert.fail(`xfs_repair -n found problems:\n${e.stdout}\n${e.stderr}`);
  }
}

async function xfsDb(image: string, ...commands: string[]): Promise<string> {
  const args = ['-r', ...commands.flatMap((c) => ['-c', c]), image];
  return (await run('xfs_db', args, { maxBuffer: 64 << 20 })).stdout;
}

const lines = (m: Manifest): string[] => m.entries.map((e) => JSON.stringify(e));

/** Mounts an image read-only where this process may (root, loop devices), calls `fn`, unmounts. */
async function withMount(image: string, dir: string, fn: (at: string) => Promise<void>) {
  const at = join(dir, 'mnt');
  await mkdir(at, { recursive: true });
  if (!isRoot || spawnSync('mount', ['-o', 'loop,ro', image, at]).status !== 0) return false;
  try {
    await fn(at);
  } finally {
    spawnSync('umount', [at]);
  }
  return true;
}

describe('xfs render', { skip: haveXfsprogs ? false : 'xfsprogs missing' }, () => {
  it('writes a filesystem xfs_repair passes, whose tree reads back as the revision (ferry, and the kernel where it mounts)', async () => {
    await withTempDir(async (dir) => {
      const src = join(dir, 'src');
      await makeTree(src);
      const store = await LocalStore.open(join(dir, 'store'));
      const ing = await ingestDirectory(store, src);
      const manifest = await store.getManifest(ing.revision);
      const img = join(dir, 'root.xfs');
      const r = await renderFilesystem(store, ing.revision, manifest, { out: img, fs: 'xfs' });
      assert.equal(r.fs, 'xfs');
      assert.equal(r.bytes, (await stat(img)).size);
      assert.match(r.uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      await xfsRepair(img);
      const version = await xfsDb(img, 'version', 'sb 0', 'p uuid agcount logblocks');
      assert.match(version, /CRC/);
      assert.match(version, /FTYPE/);
      assert.match(version, /FINOBT/);
      assert.match(version, new RegExp(`uuid = ${r.uuid}`));
      const log = await run('xfs_logprint', ['-t', img]);
      assert.match(log.stdout, /state: <CLEAN>/);

      // Each directory form: short (etc), block (mid), leaf (etc/many: 400 long names).
      const forms = await xfsDb(
        img,
        'path /etc',
        'p core.format',
        'path /mid',
        'p core.format',
        'bmap',
        'path /etc/many',
        'bmap',
      );
      assert.match(forms, /core\.format = 1 \(local\)/);
      assert.match(forms, /core\.format = 2 \(extents\)/);
      assert.match(forms, /data offset 8388608 /, 'etc/many has a hash index block');
      assert.doesNotMatch(forms, /data offset 16777216 /, 'etc/many is not in node form');

      // Read back with ferry's XFS reader: the same entries, times, attributes and links.
      const back = await ingestImage(store, img);
      assert.deepEqual(lines(await store.getManifest(back.revision)), lines(manifest));

      // And through the kernel, where this machine can mount it. To root the kernel lists XFS's
      // ACL attributes once more as trusted.SGI_ACL_*: set aside, after checking they are there.
      await withMount(img, dir, async (at) => {
        const seen = await store.getManifest((await ingestDirectory(store, at)).revision);
        const many = seen.entries.find((e) => e.path === 'etc/many')!;
        if (xattrsSupported()) assert.ok(many.xattrs?.['trusted.SGI_ACL_FILE'] !== undefined);
        const portable = seen.entries.map((e) => {
          const x = Object.entries(e.xattrs ?? {}).filter(
            ([k]) => !k.startsWith('trusted.SGI_ACL_'),
          );
          const { xattrs: _, ...rest } = e;
          return x.length === 0 ? rest : { ...rest, xattrs: Object.fromEntries(x) };
        });
        assert.deepEqual(lines({ ...seen, entries: portable }), lines(manifest));
      });
    });
  });

  it('is deterministic: two renders in other processes, time zones and umasks are bit-identical', async () => {
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
        await renderFilesystem(s, rev, m, { out: out + '.xfs', fs: 'xfs' });
        await renderDisk(s, rev, m, { out: out + '.disk', fs: 'xfs', boot: 'none' });`;
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
        process.umask(i === 0 ? 0o022 : 0o077);
        await run(argv[0]!, argv.slice(1), {
          env: {
            ...process.env,
            TMPDIR: join(dir, `tmp${i}`),
            TZ: i === 0 ? 'UTC' : 'Pacific/Chatham',
          },
        }).catch((error: { stderr?: string }) => assert.fail(String(error.stderr)));
      }
      process.umask(0o022);
      for (const suffix of ['.xfs', '.disk']) {
        const [a, b] = await Promise.all(outs.map((o) => readFile(o + suffix)));
        assert.ok(a!.equals(b!), `two renders of one revision are bit-identical (${suffix})`);
        const [ma, mb] = await Promise.all(outs.map((o) => readFile(mapPathOf(o + suffix))));
        assert.ok(ma!.equals(mb!));
      }
    });
  });

  it('keeps unchanged files in their blocks with --base and counts the chunks that changed', async () => {
    await withTempDir(async (dir) => {
      const src = join(dir, 'src');
      await makeTree(src);
      const store = await LocalStore.open(join(dir, 'store'));
      const render = async (out: string, base?: string) => {
        const ing = await ingestDirectory(store, src);
        const manifest = await store.getManifest(ing.revision);
        const result = await renderFilesystem(store, ing.revision, manifest, {
          out,
          fs: 'xfs',
          ...(base === undefined ? {} : { base }),
        });
        return { manifest, result };
      };
      const one = join(dir, 'one.xfs');
      const first = await render(one);
      await writeFile(join(src, 'etc/hostname'), 'ferry-two\n');
      await writeFile(join(src, 'etc/many/file-with-a-longish-name-00007'), 'changed\n');
      await writeFile(join(src, 'etc/added'), 'new file\n');
      execFileSync('rm', [join(src, 'etc/many/file-with-a-longish-name-00100')]);
      const two = join(dir, 'two.xfs');
      const second = await render(two, one);
      await xfsRepair(two);
      const back = await ingestImage(store, two);
      assert.deepEqual(lines(await store.getManifest(back.revision)), lines(second.manifest));
      assert.equal(second.result.uuid, first.result.uuid, 'a lineage keeps its identity');
      assert.equal(second.result.bytes, first.result.bytes);
      const maps = await Promise.all(
        [one, two].map(async (p) => JSON.parse(await readFile(mapPathOf(p), 'utf8'))),
      );
      assert.deepEqual(maps[1].nodes['usr/bin/tool'], maps[0].nodes['usr/bin/tool']);
      assert.equal(maps[1].nodes['etc/hostname'].ino, maps[0].nodes['etc/hostname'].ino);
      const files = first.manifest.entries.filter((e) => e.type === 'file' && !e.link).length;
      assert.equal(second.result.keptFiles, files - 3);
      // The reported count is the real one, and small next to the image.
      const [a, b] = await Promise.all([readFile(one), readFile(two)]);
      let real = 0;
      for (let off = 0; off < a.length; off += 512 * 1024)
        if (!a.subarray(off, off + 512 * 1024).equals(b.subarray(off, off + 512 * 1024))) real++;
      assert.equal(second.result.changedChunks, real);
      assert.ok(real <= 8, `only metadata and the changed files' chunks differ (${real})`);
      // The base's map alone: the same layout, every block written, the count from the digests.
      const twoM = join(dir, 'two-from-map.xfs');
      const fromMap = await renderFilesystem(store, second.result.revision, second.manifest, {
        out: twoM,
        fs: 'xfs',
        base: mapPathOf(one),
      });
      await xfsRepair(twoM);
      assert.equal(fromMap.keptFiles, second.result.keptFiles);
      const c = await readFile(twoM);
      let realM = 0;
      for (let off = 0; off < a.length; off += 512 * 1024)
        if (!a.subarray(off, off + 512 * 1024).equals(c.subarray(off, off + 512 * 1024))) realM++;
      assert.equal(fromMap.changedChunks, realM);
      const backM = await ingestImage(store, twoM);
      assert.deepEqual(lines(await store.getManifest(backM.revision)), lines(second.manifest));
      // An ext4 base for an XFS render (and the other way) is refused.
      await assert.rejects(
        renderFilesystem(store, first.result.revision, first.manifest, {
          out: join(dir, 'x.ext4'),
          base: one,
        }),
        { code: 'FERRY_RENDER_INPUT' },
      );
    });
  });

  it('lays out a directory of thousands of long names in node form', async () => {
    await withTempDir(async (dir) => {
      const src = join(dir, 'src');
      await mkdir(join(src, 'etc'), { recursive: true });
      await mkdir(join(src, 'usr/bin'), { recursive: true });
      await mkdir(join(src, 'd'));
      for (let i = 0; i < 3000; i++)
        await writeFile(
          join(
            src,
            'd',
            `a-rather-long-directory-entry-name-to-fill-blocks-${String(i).padStart(5, '0')}`,
          ),
          '',
        );
      const store = await LocalStore.open(join(dir, 'store'));
      const ing = await ingestDirectory(store, src);
      const manifest = await store.getManifest(ing.revision);
      const img = join(dir, 'dir.xfs');
      await renderFilesystem(store, ing.revision, manifest, { out: img, fs: 'xfs' });
      await xfsRepair(img);
      const bmap = await xfsDb(img, 'path /d', 'bmap');
      assert.match(bmap, /data offset 8388608 /, 'a dabtree node');
      assert.match(bmap, /data offset 16777216 /, 'a free index block');
      const back = await ingestImage(store, img);
      assert.deepEqual(lines(await store.getManifest(back.revision)), lines(manifest));
      const mounted = await withMount(img, dir, async (at) => {
        const names = await run('ls', [join(at, 'd')], { maxBuffer: 16 << 20 });
        assert.equal(names.stdout.trim().split('\n').length, 3000);
        await stat(join(at, 'd', 'a-rather-long-directory-entry-name-to-fill-blocks-01234'));
      });
      void mounted;
    });
  });

  it('maps a file spread over many AGs with an extent btree xfs_repair accepts', async () => {
    await withTempDir(async (dir) => {
      // 400 MiB over AGs of 16 MiB: 26 extents, more than the inode holds.
      const hash = 'a'.repeat(128);
      const size = 400 * 1024 * 1024 + 1;
      const m: Manifest = {
        version: 1,
        entries: [
          { path: '', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: '0', size: 0 },
          { path: 'big', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: '0', size, hash },
        ],
      };
      const plan = planXfs(m, { revision: 'r', agBlocks: 4096 });
      const extents = plan.files.filter((f) => f.hash === hash);
      assert.ok(extents.length > 21, `${extents.length} extents`);
      // Metadata only: xfs_repair does not read file contents.
      const img = join(dir, 'meta.xfs');
      const fh = await open(img, 'w');
      await fh.truncate(plan.blocksCount * 4096);
      for (const [b, data] of plan.meta) await fh.write(data, 0, data.length, b * 4096);
      await fh.close();
      await xfsRepair(img);
      const out = await xfsDb(img, 'path /big', 'p core.format core.nextents core.size', 'bmap');
      assert.match(out, /core\.format = 3 \(btree\)/);
      assert.match(out, new RegExp(`core\\.nextents = ${extents.length}\\b`));
      assert.match(out, new RegExp(`core\\.size = ${size}\\b`));
      // Every extent where the plan puts the file's bytes.
      const agBlocks = plan.map.agblocks;
      const listed = [
        ...out.matchAll(/data offset (\d+) startblock \d+ \((\d+)\/(\d+)\) count (\d+)/g),
      ].map((x) => ({
        block: Number(x[2]) * agBlocks + Number(x[3]),
        blocks: Number(x[4]),
        offset: Number(x[1]) * 4096,
      }));
      assert.deepEqual(
        listed,
        extents.map((f) => ({ block: f.block, blocks: f.blocks, offset: f.offset })),
      );
    });
  });

  it('keeps large and many attributes in a leaf block with remote value blocks', async () => {
    await withTempDir(async (dir) => {
      // Values larger than the host filesystem may hold: the manifest is written directly.
      const value = (n: number, seed: number): string => {
        const b = Buffer.alloc(n);
        for (let i = 0; i < n; i++) b[i] = (i * 7 + seed) & 0xff;
        return b.toString('base64');
      };
      const empty = createHash('sha512').digest('hex');
      const d = { type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: '0', size: 0 } as const;
      const file = (path: string, xattrs: Record<string, string>) =>
        ({
          path,
          type: 'file',
          mode: 0o644,
          uid: 0,
          gid: 0,
          mtime: '0',
          size: 0,
          hash: empty,
          xattrs,
        }) as const;
      const many: Record<string, string> = {};
      for (let i = 0; i < 30; i++) many[`user.attr-${String(i).padStart(2, '0')}`] = value(200, i);
      const m: Manifest = {
        version: 1,
        entries: [
          { path: '', ...d },
          file('a', { 'user.huge': value(65536, 1), 'user.small': value(10, 2) }),
          file('b', many),
          file('c', {
            'security.y': value(100, 5),
            'trusted.x': value(5000, 4),
            'user.mid': value(3500, 3),
          }),
          { path: 'etc', ...d },
          { path: 'usr', ...d },
          { path: 'usr/bin', ...d },
        ],
      };
      const store = await LocalStore.open(join(dir, 'store'));
      const plan = planXfs(m, { revision: 'attrs' });
      const img = join(dir, 'attrs.xfs');
      await writeRender(plan, plan.map, {
        out: img,
        format: 'raw',
        objectPath: (h) => store.objects.pathOf(h),
      });
      await xfsRepair(img);
      const back = await store.getManifest((await ingestImage(store, img)).revision);
      assert.deepEqual(lines(back), lines(m));
      await withMount(img, dir, async (at) => {
        const seen = await store.getManifest((await ingestDirectory(store, at)).revision);
        assert.deepEqual(
          seen.entries.map((e) => e.xattrs),
          m.entries.map((e) => e.xattrs),
        );
      });
    });
  });

  it('indexes the free space a base left fragmented with multi-level free space btrees', async () => {
    await withTempDir(async (dir) => {
      const root = {
        path: '',
        type: 'dir',
        mode: 0o755,
        uid: 0,
        gid: 0,
        mtime: '0',
        size: 0,
      } as const;
      const file = (i: number) =>
        ({
          path: `d/f${String(i).padStart(5, '0')}`,
          type: 'file',
          mode: 0o644,
          uid: 0,
          gid: 0,
          mtime: '0',
          size: 100,
          hash: 'b'.repeat(128),
        }) as const;
      const tree = (step: number): Manifest => {
        const entries: Manifest['entries'][number][] = [root, { ...root, path: 'd' }];
        for (let i = 0; i < 3000; i += step) entries.push(file(i));
        return { version: 1, entries };
      };
      const first = planXfs(tree(1), { revision: 'one', blocks: 16384 });
      // Every other file gone: 1500 one-block holes, more free extents than a btree block holds.
      const second = planXfs(tree(2), { revision: 'two', base: first.map });
      assert.ok(second.freed.length >= 1500);
      const img = join(dir, 'holes.xfs');
      const fh = await open(img, 'w');
      await fh.truncate(second.blocksCount * 4096);
      for (const [b, data] of second.meta) await fh.write(data, 0, data.length, b * 4096);
      await fh.close();
      await xfsRepair(img);
      assert.match(await xfsDb(img, 'agf 0', 'p bnolevel cntlevel'), /bnolevel = 2\ncntlevel = 2/);
    });
  });

  it('gives a filesystem of a given size from 1.25 GiB on the 64 MiB log mkfs.xfs would', async () => {
    await withTempDir(async (dir) => {
      const src = join(dir, 'src');
      await makeTree(src, 10);
      const store = await LocalStore.open(join(dir, 'store'));
      const ing = await ingestDirectory(store, src);
      const manifest = await store.getManifest(ing.revision);
      const img = join(dir, 'sized.xfs');
      const r = await renderFilesystem(store, ing.revision, manifest, {
        out: img,
        fs: 'xfs',
        size: 1536 * 1024 * 1024,
      });
      assert.equal(r.bytes, 1536 * 1024 * 1024);
      await xfsRepair(img);
      assert.match(
        await xfsDb(img, 'sb 0', 'p logblocks agcount'),
        /logblocks = 16384\nagcount = 2/,
      );
      const back = await ingestImage(store, img);
      assert.deepEqual(lines(await store.getManifest(back.revision)), lines(manifest));
    });
  });

  it('renders a disk whose root is XFS, with fstab saying so', async () => {
    await withTempDir(async (dir) => {
      const src = join(dir, 'src');
      await makeTree(src, 20);
      const store = await LocalStore.open(join(dir, 'store'));
      const ing = await ingestDirectory(store, src);
      const manifest = await store.getManifest(ing.revision);
      const disk = join(dir, 'disk.img');
      const r = await renderDisk(store, ing.revision, manifest, {
        out: disk,
        fs: 'xfs',
        boot: 'none',
      });
      assert.equal(r.fs, 'xfs');
      const map = JSON.parse(await readFile(r.map, 'utf8')) as {
        partitions: { role: string; firstLba: number; lastLba: number }[];
        fs: { format: string; uuid: string };
      };
      assert.equal(map.fs.format, 'ferry-xfs-map');
      const root = map.partitions.find((p) => p.role === 'root')!;
      const part = join(dir, 'root.xfs');
      const all = await readFile(disk);
      await writeFile(part, all.subarray(root.firstLba * 512, (root.lastLba + 1) * 512));
      await xfsRepair(part);
      const back = await store.getManifest((await ingestImage(store, disk)).revision);
      const fstab = back.entries.find((e) => e.path === 'etc/fstab')!;
      const parts: Buffer[] = [];
      for await (const c of store.objects.read(fstab.hash!)) parts.push(c);
      const text = Buffer.concat(parts).toString();
      assert.match(text, new RegExp(`^UUID=${r.rootUuid} / xfs defaults 0 0$`, 'm'));
    });
  });

  it('fails with coded errors on a size too small and on input XFS cannot hold', async () => {
    await withTempDir(async (dir) => {
      const src = join(dir, 'src');
      await makeTree(src, 10);
      const store = await LocalStore.open(join(dir, 'store'));
      const ing = await ingestDirectory(store, src);
      const m = await store.getManifest(ing.revision);
      const out = join(dir, 'out.xfs');
      await assert.rejects(
        renderFilesystem(store, ing.revision, m, { out, size: 8 * 1024 * 1024, fs: 'xfs' }),
        { code: 'FERRY_RENDER_LIMIT' },
      );
      const root = m.entries[0]!;
      const huge: Manifest = {
        version: 1,
        entries: [root, { ...root, path: 'f', type: 'file', size: 2 ** 30, hash: 'a'.repeat(128) }],
      };
      assert.throws(() => planXfs(huge, { revision: 'r', blocks: 65536 }), {
        code: 'FERRY_RENDER_LIMIT',
      });
      await assert.rejects(
        renderFilesystem(store, ing.revision, m, { out, fs: 'xfs', base: join(dir, 'old.xfs') }),
        { code: 'FERRY_RENDER_INPUT' },
      );
      const odd: Manifest = {
        version: 1,
        entries: [root, { ...root, path: 'x', xattrs: { 'system.other': 'AA==' } }],
      };
      assert.throws(() => planXfs(odd, { revision: 'r' }), { code: 'FERRY_RENDER_INPUT' });
      assert.throws(() => planXfs(m, { revision: 'r', label: 'a-label-of-20-bytes!' }), {
        code: 'FERRY_RENDER_INPUT',
      });
      // A base whose block map is not one, or lies about the filesystem.
      const old = join(dir, 'old.xfs');
      await writeFile(old, Buffer.alloc(65536));
      for (const map of [
        { format: 'ferry-xfs-map', version: 1, blocksCount: -1 },
        {
          format: 'ferry-xfs-map',
          version: 1,
          revision: 'r',
          uuid: '0'.repeat(32),
          agcount: 2,
          agblocks: 4096,
          blocksCount: 8192,
          chunks: [12],
          used: [{ start: 8190, length: 9 }],
          nodes: {},
        },
        {
          format: 'ferry-xfs-map',
          version: 1,
          revision: 'r',
          uuid: '0'.repeat(32),
          agcount: 2,
          agblocks: 4096,
          blocksCount: 8192,
          chunks: [12],
          used: [],
          nodes: { x: { ino: -3, type: 'file' } },
        },
      ]) {
        await writeFile(mapPathOf(old), JSON.stringify(map));
        await assert.rejects(
          renderFilesystem(store, ing.revision, m, { out, fs: 'xfs', base: old }),
          {
            code: 'FERRY_RENDER_INPUT',
          },
        );
      }
      await assert.rejects(stat(out), { code: 'ENOENT' });
    });
  });
});
