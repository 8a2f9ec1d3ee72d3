import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, open, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { convertImage } from '../../src/disk/index.js';
import { ingestDirectory, ingestImage, LocalStore, type Manifest } from '../../src/store/index.js';
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

async function sparse(path: string, size: number): Promise<void> {
  const fh = await open(path, 'w');
  await fh.truncate(size);
  await fh.close();
}

describe('disk image ingest', { skip: haveTools ? false : 'mke2fs or sfdisk missing' }, () => {
  it('reads the Linux root and its fstab mounts from a partitioned disk, in any format, as the tree they were made from', async () => {
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

  it('refuses an image with no Linux root, with a coded error', async () => {
    await withTempDir(async (dir) => {
      const disk = join(dir, 'empty.raw');
      await sparse(disk, 8 * 1024 * 1024);
      const store = await LocalStore.open(join(dir, 'store'));
      await assert.rejects(ingestImage(store, disk), { code: 'FERRY_STORE_SOURCE_UNSUPPORTED' });
    });
  });
});
