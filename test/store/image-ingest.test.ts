import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, open, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { convertImage } from '../../src/disk/index.js';
import { ingestDirectory, ingestImage, LocalStore, type Manifest } from '../../src/store/index.js';
import { writeXattrs, xattrsSupported } from '../../src/store/xattrs.js';
import {
  ACCESS_ACL,
  DEFAULT_ACL,
  extXattrImage,
  haveXattrTools,
  vfsAcl,
  type XattrFixture,
  xfsXattrImage,
} from '../corpus/xattr-images.js';
import { withTempDir } from '../helpers/qemu.js';

const haveTools = spawnSync('sh', ['-c', 'command -v mke2fs && command -v sfdisk']).status === 0;
const ROOT_UUID = '11111111-2222-3333-4444-555555555555';
const BOOT_UUID = '66666666-7777-8888-9999-aaaaaaaaaaaa';

/** mke2fs -d keeps whole seconds; the disk's own lost+found is not part of the tree. */
function comparable(m: Manifest, drop: (p: string) => boolean): string[] {
  return m.entries
    .filter((e) => !drop(e.path))
    .map((e) => JSON.stringify({ ...e, mtime: String(BigInt(e.mtime) / 1_000_000_000n) }));
}

const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');

/**
 * Gives the source tree extended attributes in each namespace a directory
 * ingest can read: user. (files and directories), trusted. (root only, also
 * on a symlink) and POSIX ACLs in the VFS form. Returns the ones the host
 * accepted, by path; mke2fs -d copies them into the image.
 */
function addXattrs(root: string): Map<string, Record<string, string>> {
  const wanted: Array<[string, Record<string, string>]> = [
    [
      'etc/hosts',
      {
        'user.origin': b64('image ingest test'),
        'trusted.t': b64(Buffer.from([0, 1, 255])),
        'system.posix_acl_access': b64(vfsAcl(ACCESS_ACL)),
      },
    ],
    ['usr', { 'user.big': b64(Buffer.alloc(700, 'b')) }],
    ['usr/bin', { 'system.posix_acl_default': b64(vfsAcl(DEFAULT_ACL)) }],
    ['usr/bin/bash', { 'trusted.link': b64('on the symlink') }],
  ];
  const accepted = new Map<string, Record<string, string>>();
  if (!xattrsSupported()) return accepted;
  for (const [path, attrs] of wanted) {
    const refused = new Set(writeXattrs(join(root, path), attrs));
    const ok = Object.fromEntries(Object.entries(attrs).filter(([n]) => !refused.has(n)));
    if (Object.keys(ok).length > 0) accepted.set(path, ok);
  }
  // A hard link shares its inode's attributes.
  if (accepted.has('etc/hosts')) accepted.set('etc/hosts.bak', accepted.get('etc/hosts')!);
  return accepted;
}

async function sparse(path: string, size: number): Promise<void> {
  const fh = await open(path, 'w');
  await fh.truncate(size);
  await fh.close();
}

describe('disk image ingest', { skip: haveTools ? false : 'mke2fs or sfdisk missing' }, () => {
  it('reads the Linux root and its fstab mounts from a partitioned disk, in any format, as the tree they were made from', async (t) => {
    await withTempDir(async (dir) => {
      const root = join(dir, 'root');
      const boot = join(dir, 'boot');
      await mkdir(join(root, 'etc'), { recursive: true });
      await mkdir(join(root, 'usr/bin'), { recursive: true });
      await mkdir(join(root, 'boot'));
      await mkdir(boot);
      await writeFile(
        join(root, 'etc/fstab'),
        `UUID=${ROOT_UUID} / ext4 defaults 0 1\nUUID=${BOOT_UUID} /boot ext4 defaults 0 2\n`,
      );
      await writeFile(join(root, 'etc/hosts'), '127.0.0.1 localhost\n');
      execFileSync('ln', [join(root, 'etc/hosts'), join(root, 'etc/hosts.bak')]);
      await writeFile(join(root, 'usr/bin/sh'), Buffer.alloc(3 * 1024 * 1024 + 5, 9));
      await symlink('/usr/bin/sh', join(root, 'usr/bin/bash'));
      execFileSync('mkfifo', [join(root, 'fifo')]);
      if (process.getuid?.() === 0) {
        await mkdir(join(root, 'dev'));
        execFileSync('mknod', [join(root, 'dev/null'), 'c', '1', '3']);
      }
      await writeFile(join(boot, 'vmlinuz-6.1.0-test'), 'a kernel');
      const xattrs = addXattrs(root);
      const rootFs = join(dir, 'root.ext4');
      const bootFs = join(dir, 'boot.ext4');
      await sparse(rootFs, 48 * 1024 * 1024);
      await sparse(bootFs, 16 * 1024 * 1024);
      execFileSync('mke2fs', ['-q', '-t', 'ext4', '-U', ROOT_UUID, '-d', root, rootFs]);
      execFileSync('mke2fs', ['-q', '-t', 'ext4', '-U', BOOT_UUID, '-d', boot, bootFs]);
      const disk = join(dir, 'disk.raw');
      await sparse(disk, 70 * 1024 * 1024);
      execFileSync('sfdisk', ['-q', disk], {
        input: 'start=2048, size=32768, type=83\nstart=34816, type=83\n',
      });
      execFileSync('dd', [
        `if=${bootFs}`,
        `of=${disk}`,
        'bs=1M',
        'seek=1',
        'conv=notrunc,sparse',
        'status=none',
      ]);
      execFileSync('dd', [
        `if=${rootFs}`,
        `of=${disk}`,
        'bs=512',
        'seek=34816',
        'conv=notrunc,sparse',
        'status=none',
      ]);
      const qcow2 = join(dir, 'disk.qcow2');
      await convertImage(disk, qcow2, { to: 'qcow2' });

      const store = await LocalStore.open(join(dir, 'store'));
      const fromRaw = await ingestImage(store, disk);
      const fromQcow2 = await ingestImage(store, qcow2);
      assert.equal(fromQcow2.revision, fromRaw.revision, 'the container format changes nothing');
      const m = await store.getManifest(fromRaw.revision);
      // /boot comes from the second filesystem, as fstab mounts it.
      assert.equal(m.entries.find((e) => e.path === 'boot/vmlinuz-6.1.0-test')?.size, 8);
      assert.equal(m.entries.find((e) => e.path === 'etc/hosts.bak')?.link, 'etc/hosts');
      assert.equal(m.entries.find((e) => e.path === 'usr/bin/bash')?.target, '/usr/bin/sh');
      // Extended attributes come through mke2fs -d and the image as the host stored them.
      if (xattrs.size === 0) t.diagnostic('the host stores no extended attributes: not compared');
      for (const [p, want] of xattrs)
        assert.deepEqual(m.entries.find((e) => e.path === p)?.xattrs, want, p);
      if (process.getuid?.() === 0) {
        assert.deepEqual(m.entries.find((e) => e.path === 'dev/null')?.rdev, {
          major: 1,
          minor: 3,
        });
      }
      // The same tree, assembled by hand, ingested from the directory.
      await writeFile(join(root, 'boot/vmlinuz-6.1.0-test'), 'a kernel');
      execFileSync('touch', [
        '-r',
        join(boot, 'vmlinuz-6.1.0-test'),
        join(root, 'boot/vmlinuz-6.1.0-test'),
      ]);
      const fromDir = await ingestDirectory(store, root);
      const d = await store.getManifest(fromDir.revision);
      const noise = (p: string) =>
        p === '' || p === 'boot' || p === 'lost+found' || p === 'boot/lost+found';
      assert.deepEqual(comparable(m, noise), comparable(d, noise));
    });
  });

  for (const kind of ['ext4', 'xfs-v5', 'xfs-v4'] as const) {
    it(`records the extended attributes ${kind === 'ext4' ? 'debugfs' : 'xfs_db'} set on ${kind}`, {
      skip: (kind === 'ext4' ? haveXattrTools.ext : haveXattrTools.xfs) ? false : 'tools missing',
    }, async () => {
      await withTempDir(async (dir) => {
        const fx: XattrFixture =
          kind === 'ext4' ? await extXattrImage(dir) : await xfsXattrImage(dir, kind === 'xfs-v4');
        const store = await LocalStore.open(join(dir, 'store'));
        const r = await ingestImage(store, fx.img);
        const m = await store.getManifest(r.revision);
        for (const path of fx.paths) {
          const want = fx.expect.get(path);
          const entry = m.entries.find((e) => e.path === path.slice(1));
          assert.ok(entry !== undefined, path);
          assert.deepEqual(
            entry.xattrs,
            want === undefined
              ? undefined
              : Object.fromEntries(
                  Object.keys(want)
                    .sort()
                    .map((n) => [n, want[n]!.toString('base64')]),
                ),
            path,
          );
        }
      });
    });
  }

  it('refuses an image with no Linux root, with a coded error', async () => {
    await withTempDir(async (dir) => {
      const disk = join(dir, 'empty.raw');
      await sparse(disk, 8 * 1024 * 1024);
      const store = await LocalStore.open(join(dir, 'store'));
      await assert.rejects(ingestImage(store, disk), { code: 'FERRY_STORE_SOURCE_UNSUPPORTED' });
    });
  });
});
