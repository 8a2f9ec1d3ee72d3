import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { it } from 'node:test';
import { openVfat } from '../../src/inspect/fs/vfat/index.js';
import { fuzzFilesystem } from '../helpers/fs-fuzz.js';
import { withTempDir } from '../helpers/qemu.js';

const haveTools = (() => {
  try {
    execFileSync('sh', ['-c', 'command -v mkfs.vfat && command -v mcopy'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

it('vfat reader survives mutated images with only coded errors', {
  skip: haveTools ? false : 'mkfs.vfat/mtools not installed',
}, async () => {
  await withTempDir(async (dir) => {
    const img = join(dir, 'f.img');
    execFileSync('mkfs.vfat', ['-C', '-F', '16', '-s', '1', img, '4200'], { stdio: 'ignore' });
    await mkdir(join(dir, 'src', 'EFI', 'BOOT'), { recursive: true });
    await writeFile(join(dir, 'src', 'EFI', 'BOOT', 'BOOTX64.EFI'), Buffer.alloc(20_000, 7));
    await writeFile(join(dir, 'src', 'EFI', 'a long name.cfg'), 'x'.repeat(3000));
    execFileSync('mcopy', ['-s', '-i', img, join(dir, 'src', 'EFI'), '::/'], {
      env: { ...process.env, MTOOLS_SKIP_CHECK: '1' },
    });
    const seed = await readFile(img);
    // Boot sector, the start of both FATs, and the root directory.
    const stats = await fuzzFilesystem(seed, openVfat, [
      [0, 512],
      [512, 1024],
      [512 + 17 * 512, 512 + 17 * 512 + 512],
      [512 + 34 * 512, 512 + 34 * 512 + 2048],
    ]);
    assert.ok(stats.runs > 10, `only ${stats.runs} runs`);
    assert.ok(
      stats.refused < stats.runs,
      'every mutant was refused: the fuzzer is not reaching the reader',
    );
  });
});
