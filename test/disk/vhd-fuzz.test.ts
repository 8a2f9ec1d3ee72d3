import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildVhd, resealVhd, type VhdLayout } from '../corpus/vhd.js';
import { fuzzParser } from '../helpers/fuzz.js';

const MiB = 1024 * 1024;

/** Small valid seeds: dynamic disks with 4 KiB to 2 MiB blocks, and a fixed disk. */
const built = [
  buildVhd({ virtualSize: 8 * MiB, blockSize: MiB, data: [0, 3, 7], slack: 4096 }),
  buildVhd({ virtualSize: 256 * 1024 + 1536, blockSize: 4096, data: [2, 0, 64, 9] }),
  buildVhd({ virtualSize: 3 * MiB, blockSize: 2 * MiB, data: [1], creatorApp: 'vpc ' }),
  buildVhd({ fixed: true, virtualSize: MiB + 512 }),
];
const seeds = built.map((b) => b.image);

/** Footers, dynamic header and BAT of one seed. */
function hotRanges(image: Buffer, l: VhdLayout): Array<[number, number]> {
  const tail: [number, number] = [image.length - 512, image.length - 512 + 88];
  if (l.fixed) return [tail];
  return [[0, 88], [512, 512 + 40], [l.batOffset, l.batOffset + l.entries * 4], tail];
}

const ranges = built.flatMap((b) => hotRanges(b.image, b.layout));

describe('vhd fuzz', () => {
  it('survives mutated images (checksums as mutated)', async () => {
    const stats = await fuzzParser(seeds, { hotRanges: ranges });
    assert.ok(stats.runs > 0);
  });

  it('survives mutated images with footer and header checksums recomputed', async () => {
    const stats = await fuzzParser(seeds, { hotRanges: ranges, fixup: resealVhd });
    assert.ok(stats.runs > 0);
    // With the checksums fixed, many mutants get past the footer: some must open.
    assert.ok(stats.opened > 0, JSON.stringify(stats));
  });
});
