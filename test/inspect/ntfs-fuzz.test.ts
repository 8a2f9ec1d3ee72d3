import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { it } from 'node:test';
import fc from 'fast-check';
import { isFerryError } from '../../src/errors/index.js';
import { openNtfs } from '../../src/inspect/fs/ntfs/index.js';
import { bufferVolume } from '../../src/inspect/volume.js';
import { Hive } from '../../src/inspect/windows/hive.js';
import { fuzzFilesystem } from '../helpers/fs-fuzz.js';
import { FUZZ_SECONDS } from '../helpers/fuzz.js';
import { buildHive } from '../helpers/hive-builder.js';
import { withTempDir } from '../helpers/qemu.js';

const haveMkntfs = spawnSync('sh', ['-c', 'command -v mkntfs']).status === 0;

it('ntfs reader survives mutated images with only coded errors', {
  skip: haveMkntfs ? false : 'mkntfs not installed',
}, async () => {
  await withTempDir(async (dir) => {
    const img = join(dir, 'n.img');
    await writeFile(img, '');
    await truncate(img, 8 * 1024 * 1024);
    execFileSync('mkntfs', ['-q', '-F', '-Q', '-c', '4096', img], { stdio: 'ignore' });
    const mnt = join(dir, 'mnt');
    await mkdir(mnt);
    // Add files when FUSE works; the bare volume is still a useful seed without it.
    if (spawnSync('ntfs-3g', [img, mnt], { stdio: 'ignore' }).status === 0) {
      try {
        await mkdir(join(mnt, 'Windows', 'System32'), { recursive: true });
        for (let i = 0; i < 60; i++)
          await writeFile(join(mnt, 'Windows', `f${i}.txt`), 'x'.repeat(i * 50));
      } finally {
        execFileSync('fusermount', ['-u', mnt], { stdio: 'ignore' });
      }
    }
    const seed = await readFile(img);
    const d = await openNtfs(bufferVolume(seed));
    assert.ok(d !== null);
    const mft = d.boot.mftLcn * d.boot.clusterSize;
    // Boot sector, the first MFT records ($MFT, $Volume, root, and user files) and index blocks after them.
    const stats = await fuzzFilesystem(seed, openNtfs, [
      [0, 512],
      [mft, mft + 6 * 1024],
      [mft + 64 * 1024, mft + 80 * 1024],
      [0, seed.length],
    ]);
    assert.ok(stats.runs > 10, `only ${stats.runs} runs`);
    assert.ok(stats.refused < stats.runs, 'every mutant was refused');
  });
});

it('hive reader survives mutated hives with only coded errors', async () => {
  const seed = buildHive({
    keys: {
      Microsoft: {
        keys: {
          'Windows NT': {
            keys: { CurrentVersion: { values: { ProductName: 'x', CurrentBuild: '1', N: 3 } } },
          },
        },
      },
    },
  });
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.record({ at: fc.nat({ max: seed.length - 5 }), v: fc.nat({ max: 0xffffffff }) }),
        { minLength: 1, maxLength: 6 },
      ),
      async (muts) => {
        const b = Buffer.from(seed);
        for (const m of muts)
          b.writeUInt32LE(m.v, m.at < 4096 ? 4096 + (m.at % (b.length - 4100)) : m.at);
        try {
          const h = await Hive.open(async (o, l) => {
            if (o + l > b.length) throw new Error('out of range read');
            return Buffer.from(b.subarray(o, o + l));
          }, b.length);
          await h.values('Microsoft\\Windows NT\\CurrentVersion');
          await h.subkeys('Microsoft');
        } catch (error) {
          if (!isFerryError(error)) throw error;
        }
      },
    ),
    { interruptAfterTimeLimit: FUZZ_SECONDS * 1000, numRuns: 1_000_000 },
  );
});
