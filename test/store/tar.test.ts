import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, readdir, symlink, truncate, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  diffManifests,
  exportTarball,
  ingestDirectory,
  ingestTarball,
  LocalStore,
  memberPath,
} from '../../src/store/index.js';
import { writeXattrs, xattrsSupported } from '../../src/store/xattrs.js';
import { withTempDir } from '../helpers/qemu.js';

const haveTools =
  spawnSync('sh', ['-c', 'command -v tar && command -v xz && command -v zstd']).status === 0;

async function tree(dir: string): Promise<void> {
  const long = 'd'.repeat(120);
  await mkdir(join(dir, 'etc', long), { recursive: true });
  await writeFile(join(dir, 'etc/hosts'), '127.0.0.1 localhost\n');
  await writeFile(join(dir, 'etc', long, `${'f'.repeat(150)}.conf`), 'long names\n');
  await writeFile(join(dir, 'big'), Buffer.alloc(1024 * 1024 + 7, 3));
  execFileSync('ln', [join(dir, 'big'), join(dir, 'big-link')]);
  await symlink('etc/hosts', join(dir, 'hosts-link'));
  if (xattrsSupported())
    writeXattrs(join(dir, 'etc/hosts'), {
      'user.origin': Buffer.from('tarball test').toString('base64'),
    });
  for (const p of [
    'etc/hosts',
    'big',
    `etc/${long}/${'f'.repeat(150)}.conf`,
    'etc',
    `etc/${long}`,
    '',
  ]) {
    await utimes(join(dir, p), 1_700_000_000.25, 1_700_000_000.25);
  }
}

/** Ingests, expecting a coded refusal, and checks the store took nothing in. */
async function refused(store: LocalStore, path: string, code: string): Promise<void> {
  await assert.rejects(ingestTarball(store, path), { code }, path);
  assert.deepEqual(await readdir(join(store.root, 'tmp')), [], 'no half-written object is left');
  assert.deepEqual(await store.streams(), []);
}

/** A one-member ustar archive written by hand (for names GNU tar refuses to write). */
function rawTar(
  members: Array<{ name: string; type?: string; link?: string; data?: Buffer }>,
): Buffer {
  const blocks: Buffer[] = [];
  for (const m of members) {
    const h = Buffer.alloc(512);
    h.write(m.name, 0, 100, 'utf8');
    h.write('0000644\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(`${(m.data?.length ?? 0).toString(8).padStart(11, '0')}\0`, 124);
    h.write('14000000000\0', 136);
    h.write(m.type ?? '0', 156);
    if (m.link !== undefined) h.write(m.link, 157, 100);
    h.write('ustar\0', 257);
    h.write('00', 263);
    h.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    blocks.push(h);
    if (m.data !== undefined) {
      blocks.push(m.data, Buffer.alloc((512 - (m.data.length % 512)) % 512));
    }
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

describe('tarball ingest', { skip: haveTools ? false : 'tar, xz or zstd missing' }, () => {
  it('reads GNU and pax tarballs, plain and compressed, to the revisions their contents define', async () => {
    await withTempDir(async (dir) => {
      const src = join(dir, 'src');
      await tree(src);
      const store = await LocalStore.open(join(dir, 'store'));
      const fromDir = await ingestDirectory(store, src);
      const ids = new Map<string, string>();
      for (const [name, args] of [
        ['gnu.tar', ['--format=gnu', '-cf']],
        ['gnu.tar.gz', ['--format=gnu', '-czf']],
        ['gnu.tar.xz', ['--format=gnu', '-cJf']],
        ['gnu.tar.zst', ['--format=gnu', '--zstd', '-cf']],
        ['pax.tar', ['--format=pax', '--xattrs', '-cf']],
        ['pax.tar.gz', ['--format=pax', '--xattrs', '-czf']],
      ] as const) {
        const path = join(dir, name);
        execFileSync('tar', ['-C', src, ...args, path, '.']);
        const r = await ingestTarball(store, path);
        // hosts, the long-named file, big and its hard link; a hard link adds no bytes.
        assert.equal(r.files, 4, name);
        assert.equal(r.bytes, 1024 * 1024 + 7 + 20 + 11, name);
        ids.set(name, r.revision);
      }
      // The compression changes nothing; GNU tar keeps whole seconds, pax keeps nanoseconds.
      for (const n of ['gnu.tar.gz', 'gnu.tar.xz', 'gnu.tar.zst'])
        assert.equal(ids.get(n), ids.get('gnu.tar'), n);
      assert.equal(ids.get('pax.tar.gz'), ids.get('pax.tar'));
      // A pax archive of a tree (with --xattrs) is the tree: same manifest, same revision id.
      assert.equal(ids.get('pax.tar'), fromDir.revision);
      if (xattrsSupported()) {
        const pm = await store.getManifest(ids.get('pax.tar')!);
        assert.equal(
          pm.entries.find((e) => e.path === 'etc/hosts')?.xattrs?.['user.origin'],
          Buffer.from('tarball test').toString('base64'),
        );
      }
      const m = await store.getManifest(ids.get('gnu.tar')!);
      assert.equal(m.entries.find((e) => e.path === 'big-link')?.link, 'big');
      assert.equal(m.entries.find((e) => e.path === 'hosts-link')?.target, 'etc/hosts');
      assert.ok(m.entries.some((e) => e.path.endsWith(`${'f'.repeat(150)}.conf`)));
      assert.equal(m.entries.find((e) => e.path === 'etc/hosts')?.mtime, '1700000000000000000');
    });
  });

  it('exports a revision as a pax tarball that GNU tar extracts to the tree and that ingests to the same revision', async () => {
    await withTempDir(async (dir) => {
      const src = join(dir, 'src');
      await tree(src);
      // A name past 255 bytes in total and a link target past 100: both need pax records.
      await symlink(`${'t'.repeat(150)}/target`, join(src, 'long-target'));
      const store = await LocalStore.open(join(dir, 'store'));
      const a = await ingestDirectory(store, src);
      const tarPath = join(dir, 'out.tar');
      const r = await exportTarball(store, await store.getManifest(a.revision), tarPath);
      assert.equal(r.bytes, a.bytes);
      const b = await ingestTarball(store, tarPath);
      assert.equal(b.revision, a.revision, 'export then ingest is the identity');
      const x = join(dir, 'x');
      await mkdir(x);
      execFileSync('tar', ['-C', x, '--xattrs', '--xattrs-include=*', '-xf', tarPath]);
      const c = await ingestDirectory(store, x);
      const d = diffManifests(
        await store.getManifest(a.revision),
        await store.getManifest(c.revision),
      );
      // GNU tar restores everything but the root directory's own time and mode.
      assert.deepEqual([...d.added, ...d.removed], []);
      assert.deepEqual(
        d.changed.filter((ch) => ch.path !== ''),
        [],
      );
    });
  });

  it('adds parent directories a tarball leaves out and lets a later member replace an earlier one', async () => {
    await withTempDir(async (dir) => {
      const store = await LocalStore.open(join(dir, 'store'));
      const t = join(dir, 't.tar');
      await writeFile(
        t,
        rawTar([
          { name: './usr/bin/a', data: Buffer.from('one') },
          { name: './usr/bin/a', data: Buffer.from('two!') },
        ]),
      );
      const r = await ingestTarball(store, t);
      const m = await store.getManifest(r.revision);
      assert.deepEqual(
        m.entries.map((e) => [e.path, e.type, e.size]),
        [
          ['', 'dir', 0],
          ['usr', 'dir', 0],
          ['usr/bin', 'dir', 0],
          ['usr/bin/a', 'file', 4],
        ],
      );
    });
  });

  it('refuses hostile tarballs with coded errors and stores nothing', async () => {
    await withTempDir(async (dir) => {
      const store = await LocalStore.open(join(dir, 'store'));
      const write = async (name: string, data: Buffer): Promise<string> => {
        const p = join(dir, name);
        await writeFile(p, data);
        return p;
      };
      await refused(
        store,
        await write('dotdot.tar', rawTar([{ name: '../evil', data: Buffer.from('x') }])),
        'FERRY_TAR_UNSAFE_PATH',
      );
      await refused(
        store,
        await write('deep.tar', rawTar([{ name: 'a/../../evil', data: Buffer.from('x') }])),
        'FERRY_TAR_UNSAFE_PATH',
      );
      await refused(
        store,
        await write('abs.tar', rawTar([{ name: '/etc/passwd', data: Buffer.from('x') }])),
        'FERRY_TAR_UNSAFE_PATH',
      );
      // A symlink out of the root, then a member written through it.
      await refused(
        store,
        await write(
          'escape.tar',
          rawTar([
            { name: 'a', type: '2', link: '/etc' },
            { name: 'a/passwd', data: Buffer.from('root::0:0') },
          ]),
        ),
        'FERRY_STORE_MANIFEST_INVALID',
      );
      await refused(
        store,
        await write('hardlink.tar', rawTar([{ name: 'x', type: '1', link: '/etc/shadow' }])),
        'FERRY_TAR_UNSAFE_PATH',
      );
      // A pax header claiming 64 MiB.
      const pax = rawTar([{ name: 'h', type: 'x', data: Buffer.alloc(0) }]);
      pax.write(`${(64 * 1024 * 1024).toString(8).padStart(11, '0')}\0`, 124);
      pax.fill(0x20, 148, 156);
      let sum = 0;
      for (const b of pax.subarray(0, 512)) sum += b;
      pax.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
      await refused(store, await write('pax.tar', pax), 'FERRY_TAR_BAD_ARCHIVE');
      const broken = rawTar([{ name: 'f', data: Buffer.from('data') }]);
      broken.writeUInt8(broken.readUInt8(10) ^ 0x41, 10);
      await refused(store, await write('checksum.tar', broken), 'FERRY_TAR_BAD_ARCHIVE');
      const cut = rawTar([{ name: 'f', data: Buffer.alloc(4096, 1) }]).subarray(0, 2048);
      await refused(store, await write('truncated.tar', cut), 'FERRY_TAR_BAD_ARCHIVE');
      // A decompression bomb: 600 MiB of zeros in a member, zstd-compressed to a few KiB.
      const zeros = join(dir, 'zeros');
      await writeFile(zeros, '');
      await truncate(zeros, 600 * 1024 * 1024);
      const bomb = join(dir, 'bomb.tar.zst');
      execFileSync('sh', ['-c', `tar -C ${dir} -cf - zeros | zstd -q -19 -c > ${bomb}`]);
      await refused(store, bomb, 'FERRY_DECOMPRESS');
    });
  });

  it('normalises member names and refuses the unsafe ones', () => {
    assert.equal(memberPath('./'), '');
    assert.equal(memberPath('./etc/hosts'), 'etc/hosts');
    assert.equal(memberPath('etc//x/'), 'etc/x');
    for (const bad of ['/abs', '../x', 'a/../../x', 'a/..']) {
      assert.throws(() => memberPath(bad), { code: 'FERRY_TAR_UNSAFE_PATH' }, bad);
    }
  });
});
