import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { it } from 'node:test';
import { openImage } from '../../src/disk/index.js';
import { openXfs } from '../../src/inspect/fs/xfs/index.js';
import { volumeOf } from '../../src/inspect/volume.js';
import { fuzzFilesystem } from '../helpers/fs-fuzz.js';
import { withTempDir } from '../helpers/qemu.js';

const haveMkfs = (() => {
  try {
    execFileSync('sh', ['-c', 'command -v mkfs.xfs'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

it('xfs reader survives mutated images with only coded errors', {
  skip: haveMkfs ? false : 'mkfs.xfs not installed',
}, async () => {
  await withTempDir(async (dir) => {
    await mkdir(join(dir, 'src'));
    const f = join(dir, 'src', 'f');
    await writeFile(f, 'x'.repeat(10_000));
    const proto = ['/dev/null', '0 0', 'd--755 0 0', 'etc d--755 0 0'];
    for (let i = 0; i < 300; i++) proto.push(`file-number-${i} ---644 0 0 ${f}`);
    proto.push(
      'link l--777 0 0 ../etc/file-number-1',
      '$',
      'short d--755 0 0',
      `a ---644 0 0 ${f}`,
      '$',
      '$',
    );
    await writeFile(join(dir, 'proto'), `${proto.join('\n')}\n`);
    const img = join(dir, 'x.img');
    await writeFile(img, '');
    await truncate(img, 320 * 1024 * 1024);
    execFileSync('mkfs.xfs', ['-q', '-f', '-p', join(dir, 'proto'), img], { stdio: 'pipe' });
    const image = await openImage(img);
    try {
      // Superblock, the first inode chunk (root and its neighbours) and the blocks after it.
      const stats = await fuzzFilesystem(volumeOf(image, 0, image.virtualSize), openXfs, [
        [0, 512],
        [64 * 1024, 96 * 1024],
        [96 * 1024, 512 * 1024],
      ]);
      assert.ok(stats.runs > 10, `only ${stats.runs} runs`);
      assert.ok(
        stats.refused < stats.runs,
        'every mutant was refused: the fuzzer is not reaching the reader',
      );
    } finally {
      await image.close();
    }
  });
});
