import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openImage } from '../../src/disk/index.js';
import { FsTree } from '../../src/inspect/fs/fs-tree.js';
import { openXfs } from '../../src/inspect/fs/xfs/index.js';
import { volumeOf } from '../../src/inspect/volume.js';
import { pseudoRandom } from '../helpers/disks.js';
import { withTempDir } from '../helpers/qemu.js';

const haveMkfs = (() => {
  try {
    execFileSync('sh', ['-c', 'command -v mkfs.xfs'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

const LONG_TARGET = `/usr/share/${'deep/'.repeat(200)}file`;

/** Builds an XFS image from a proto file (no mount, no root needed). */
async function makeXfs(
  dir: string,
  v4: boolean,
): Promise<{ img: string; files: Map<string, Buffer> }> {
  const src = join(dir, 'src');
  await mkdir(src, { recursive: true });
  const files = new Map<string, Buffer>([
    ['/etc/os-release', Buffer.from('ID=debian\nVERSION_ID="12"\n')],
    ['/boot/vmlinuz-6.1.0-18-amd64', pseudoRandom(3 * 1024 * 1024 + 123, 'kernel')],
    ['/empty', Buffer.alloc(0)],
  ]);
  const proto: string[] = ['/dev/null', '0 0', 'd--755 0 0'];
  let n = 0;
  const put = async (data: Buffer) => {
    const p = join(src, `f${n++}`);
    await writeFile(p, data);
    return p;
  };
  proto.push(`etc d--755 0 0`, `os-release ---644 0 0 ${await put(files.get('/etc/os-release')!)}`);
  // A directory big enough for the node (leaf + free) form.
  proto.push(`big d--755 0 0`);
  for (let i = 0; i < 3000; i++) {
    const name = `entry-with-a-long-name-${i.toString().padStart(5, '0')}`;
    files.set(`/etc/big/${name}`, Buffer.from(`#${i}\n`));
    proto.push(`${name} ---600 1000 1000 ${await put(Buffer.from(`#${i}\n`))}`);
  }
  proto.push(
    '$',
    `alternatives d--755 0 0`,
    `editor l--777 0 0 /usr/bin/vim.basic`,
    `long l--777 0 0 ${LONG_TARGET}`,
    '$',
    '$',
  );
  proto.push(
    `boot d--755 0 0`,
    `vmlinuz-6.1.0-18-amd64 ---644 0 0 ${await put(files.get('/boot/vmlinuz-6.1.0-18-amd64')!)}`,
    '$',
  );
  proto.push(
    `empty ---644 0 0 ${await put(Buffer.alloc(0))}`,
    `vmlinuz l--777 0 0 boot/vmlinuz-6.1.0-18-amd64`,
  );
  proto.push(
    `usr d--755 0 0`,
    `bin d--755 0 0`,
    `vim.basic ---755 0 0 ${await put(Buffer.from('ELF'))}`,
    '$',
    '$',
    '$',
  );
  files.set('/usr/bin/vim.basic', Buffer.from('ELF'));
  await writeFile(join(dir, 'proto'), `${proto.join('\n')}\n`);
  const img = join(dir, 'xfs.img');
  await writeFile(img, '');
  await truncate(img, 320 * 1024 * 1024);
  const opts = v4
    ? ['-m', 'crc=0,finobt=0', '-n', 'ftype=1']
    : ['-m', 'uuid=01234567-89ab-cdef-0123-456789abcdef'];
  execFileSync('mkfs.xfs', ['-q', '-f', '-L', 'rootfs', ...opts, '-p', join(dir, 'proto'), img], {
    stdio: 'pipe',
  });
  return { img, files };
}

describe('xfs reader', { skip: haveMkfs ? false : 'mkfs.xfs not installed' }, () => {
  for (const v4 of [false, true]) {
    it(`reads files, big directories and symlinks from a ${v4 ? 'v4' : 'v5'} filesystem made by mkfs.xfs`, async () => {
      await withTempDir(async (dir) => {
        const { img, files } = await makeXfs(dir, v4);
        const image = await openImage(img);
        try {
          const driver = await openXfs(volumeOf(image, 0, image.virtualSize));
          assert.ok(driver !== null);
          assert.equal(driver.sb.v5, !v4);
          assert.equal(driver.sb.label, 'rootfs');
          if (!v4) assert.equal(driver.sb.uuid, '01234567-89ab-cdef-0123-456789abcdef');
          const fs = new FsTree(driver);
          for (const [p, data] of files)
            assert.deepEqual(await fs.readFile(p, 16 * 1024 * 1024), data, p);
          const big = (await fs.readDir('/etc/big')) ?? [];
          assert.equal(big.length, 3000);
          assert.equal(await fs.readLink('/etc/alternatives/editor'), '/usr/bin/vim.basic');
          assert.equal(await fs.readLink('/etc/alternatives/long'), LONG_TARGET);
          assert.deepEqual(await fs.readFile('/etc/alternatives/editor'), Buffer.from('ELF'));
          assert.equal(
            (await fs.stat('/vmlinuz'))?.size,
            files.get('/boot/vmlinuz-6.1.0-18-amd64')!.length,
          );
          assert.equal((await fs.lstat('/etc/big/entry-with-a-long-name-00042'))?.uid, 1000);
          const part = await fs.readRange('/boot/vmlinuz-6.1.0-18-amd64', 1_000_000, 70_000);
          assert.deepEqual(
            part,
            files.get('/boot/vmlinuz-6.1.0-18-amd64')!.subarray(1_000_000, 1_070_000),
          );
        } finally {
          await image.close();
        }
      });
    });
  }
});
