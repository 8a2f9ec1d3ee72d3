import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isFerryError } from '../../src/errors/index.js';
import { FsTree } from '../../src/inspect/fs/fs-tree.js';
import { openVfat } from '../../src/inspect/fs/vfat/index.js';
import { bufferVolume } from '../../src/inspect/volume.js';
import { pseudoRandom } from '../helpers/disks.js';
import { withTempDir } from '../helpers/qemu.js';

const haveTools = (() => {
  try {
    execFileSync('sh', ['-c', 'command -v mkfs.vfat && command -v mcopy'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

async function makeFat(
  dir: string,
  fatBits: 12 | 16 | 32,
  sizeKiB: number,
): Promise<{ img: Buffer; files: Map<string, Buffer> }> {
  const img = join(dir, `fat${fatBits}.img`);
  execFileSync(
    'mkfs.vfat',
    ['-C', '-F', String(fatBits), '-n', 'EFI', '-i', '1234abcd', img, String(sizeKiB)],
    { stdio: 'ignore' },
  );
  const src = join(dir, 'src');
  await mkdir(join(src, 'EFI', 'BOOT'), { recursive: true });
  await mkdir(join(src, 'EFI', 'debian'), { recursive: true });
  const files = new Map<string, Buffer>([
    ['/EFI/BOOT/BOOTX64.EFI', pseudoRandom(150 * 1024 + 17, 'boot')],
    [
      '/EFI/debian/grub.cfg',
      Buffer.from("search.fs_uuid 1234 root\nset prefix=($root)'/boot/grub'\n"),
    ],
    ['/EFI/debian/A Long File Name With Spaces.txt', Buffer.from('long name')],
    ['/empty.txt', Buffer.alloc(0)],
    ['/lower.txt', Buffer.from('lower case short name')],
  ]);
  for (const [p, data] of files) await writeFile(join(src, p), data);
  execFileSync(
    'mcopy',
    ['-s', '-i', img, join(src, 'EFI'), join(src, 'empty.txt'), join(src, 'lower.txt'), '::/'],
    {
      stdio: 'ignore',
      env: { ...process.env, MTOOLS_SKIP_CHECK: '1' },
    },
  );
  return { img: await readFile(img), files };
}

describe('vfat reader', { skip: haveTools ? false : 'mkfs.vfat/mtools not installed' }, () => {
  for (const [bits, size] of [
    [12, 2048],
    [16, 32 * 1024],
    [32, 40 * 1024],
  ] as const) {
    it(`reads FAT${bits} files written by mtools, case-insensitively, with long names`, async () => {
      await withTempDir(async (dir) => {
        const { img, files } = await makeFat(dir, bits, size);
        const driver = await openVfat(bufferVolume(img));
        assert.ok(driver !== null);
        assert.equal(driver.geometry.fatType, bits);
        const fs = new FsTree(driver);
        for (const [p, data] of files) assert.deepEqual(await fs.readFile(p), data, p);
        assert.deepEqual(
          await fs.readFile('/efi/boot/bootx64.efi'),
          files.get('/EFI/BOOT/BOOTX64.EFI'),
        );
        const names = ((await fs.readDir('/EFI/debian')) ?? []).map((e) => e.name).sort();
        assert.deepEqual(names, ['A Long File Name With Spaces.txt', 'grub.cfg']);
        assert.equal(await fs.readFile('/EFI/nope'), null);
        const range = await fs.readRange('/EFI/BOOT/BOOTX64.EFI', 100_000, 10_000);
        assert.deepEqual(range, files.get('/EFI/BOOT/BOOTX64.EFI')!.subarray(100_000, 110_000));
      });
    });
  }

  it('returns null for a volume that is not FAT', async () => {
    assert.equal(await openVfat(bufferVolume(Buffer.alloc(4096))), null);
  });

  it('refuses a cluster chain that loops', { skip: false }, async () => {
    await withTempDir(async (dir) => {
      const { img } = await makeFat(dir, 16, 32 * 1024);
      const driver = await openVfat(bufferVolume(img));
      assert.ok(driver !== null);
      const g = driver.geometry;
      // Point BOOTX64.EFI's first cluster at itself in the FAT.
      const fs = new FsTree(driver);
      const node = await fs.resolve('/EFI/BOOT/BOOTX64.EFI');
      const first = (node!.ref as { cluster: number }).cluster;
      img.writeUInt16LE(first, g.fatOffset + first * 2);
      const broken = new FsTree((await openVfat(bufferVolume(img)))!);
      await assert.rejects(broken.readFile('/EFI/BOOT/BOOTX64.EFI'), (e) =>
        isFerryError(e, 'FERRY_FS_CORRUPT'),
      );
    });
  });
});
