import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { openImage } from '../../src/disk/index.js';
import { isFerryError } from '../../src/errors/index.js';
import { openExt } from '../../src/inspect/fs/ext/index.js';
import { FsTree } from '../../src/inspect/fs/fs-tree.js';
import { openXfs } from '../../src/inspect/fs/xfs/index.js';
import { bufferVolume, volumeOf } from '../../src/inspect/volume.js';
import { debugfs, inodeOffset } from '../corpus/ext.js';
import {
  extXattrImage,
  haveXattrTools,
  xfsAttrExtents,
  xfsBlockByte,
  xfsInodeByte,
  xfsXattrImage,
} from '../corpus/xattr-images.js';
import { fuzzFilesystem } from '../helpers/fs-fuzz.js';
import { FUZZ_SECONDS } from '../helpers/fuzz.js';
import { withTempDir } from '../helpers/qemu.js';

const HOSTILE = [0, 1, 3, 4, 0x10, 0x7f, 0x80, 0xff, 0xfff, 0x1000, 0xffff, 0x10000, 0xffffffff];

/**
 * Mutation fuzzing of the attribute readers, on the fixtures of
 * xattr-images.ts: mutations land on the inodes and attribute blocks that
 * hold attributes, then every path's attributes are read (and, for XFS,
 * the whole tree is walked). Only FerryErrors may escape.
 */
describe('extended attribute fuzz', () => {
  it(`ext4 attribute areas, blocks and value inodes mutated (${FUZZ_SECONDS} s)`, {
    skip: haveXattrTools.ext ? false : 'e2fsprogs not installed',
  }, async () => {
    await withTempDir(async (dir) => {
      const fx = await extXattrImage(dir, 4 * 1024 * 1024);
      const seed = await readFile(fx.img);
      const hot: Array<[number, number]> = [];
      for (const p of fx.paths) {
        const at = inodeOffset(fx.img, 4096, p);
        hot.push([at, at + 256]);
        const acl = /File ACL: (\d+)/.exec(debugfs(fx.img, `stat ${p}`))?.[1];
        if (acl !== undefined && acl !== '0')
          hot.push([Number(acl) * 4096, Number(acl) * 4096 + 4096]);
      }
      const stats = { runs: 0, read: 0, refused: 0 };
      await fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.record({
              r: fc.nat(),
              at: fc.nat(),
              kind: fc.constantFrom('byte', 'u16', 'u32'),
              value: fc.oneof(fc.constantFrom(...HOSTILE), fc.nat({ max: 0xffffffff })),
            }),
            { minLength: 1, maxLength: 6 },
          ),
          async (muts) => {
            const buf = Buffer.from(seed);
            for (const m of muts) {
              const [lo, hi] = hot[m.r % hot.length]!;
              const at = Math.min(buf.length - 4, lo + (m.at % (hi - lo)));
              if (m.kind === 'byte') buf[at] = m.value & 0xff;
              else if (m.kind === 'u16') buf.writeUInt16LE(m.value & 0xffff, at);
              else buf.writeUInt32LE(m.value >>> 0, at);
            }
            stats.runs++;
            let driver: Awaited<ReturnType<typeof openExt>>;
            try {
              driver = await openExt(bufferVolume(buf));
            } catch (error) {
              if (!isFerryError(error)) throw error;
              stats.refused++;
              return;
            }
            if (driver === null) return;
            const tree = new FsTree(driver);
            for (const p of fx.paths) {
              try {
                await tree.readXattrs(p);
                stats.read++;
              } catch (error) {
                if (!isFerryError(error)) throw error;
                stats.refused++;
              }
            }
          },
        ),
        {
          interruptAfterTimeLimit: FUZZ_SECONDS * 1000,
          numRuns: 1_000_000,
          seed: Number(process.env.FERRY_FUZZ_SEED ?? Date.now() % 2 ** 31),
        },
      );
      console.log(`# ext xattr fuzz: ${JSON.stringify(stats)}`);
      assert.ok(stats.runs > 10, `only ${stats.runs} runs`);
      assert.ok(stats.read > 0, 'no mutant was read: the fuzzer is not reaching the reader');
    });
  });

  for (const v4 of [false, true]) {
    it(`XFS ${v4 ? 'v4' : 'v5'} attribute forks, leaves, nodes and remote blocks mutated (${FUZZ_SECONDS} s)`, {
      skip: haveXattrTools.xfs ? false : 'xfsprogs not installed',
    }, async () => {
      await withTempDir(async (dir) => {
        const fx = await xfsXattrImage(dir, v4);
        const hot: Array<[number, number]> = [];
        for (const p of fx.paths) {
          const at = xfsInodeByte(fx.img, p, 512);
          hot.push([at, at + 512]);
        }
        for (const p of ['/leaf', '/node']) {
          for (const e of xfsAttrExtents(fx.img, p)) {
            const at = xfsBlockByte(fx.img, e.block);
            hot.push([at, at + Math.min(e.count, 4) * 4096]);
          }
        }
        const image = await openImage(fx.img);
        try {
          const stats = await fuzzFilesystem(volumeOf(image, 0, image.virtualSize), openXfs, hot);
          console.log(`# xfs ${v4 ? 'v4' : 'v5'} xattr fuzz: ${JSON.stringify(stats)}`);
          assert.ok(stats.runs > 10, `only ${stats.runs} runs`);
          assert.ok(stats.refused < stats.runs, 'every mutant was refused');
        } finally {
          await image.close();
        }
      });
    });
  }
});
