import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildVhdx, resealVhdx, type VhdxLayout } from '../corpus/vhdx.js';
import { fuzzParser } from '../helpers/fuzz.js';

const MiB = 1024 * 1024;

/** Small valid seeds: 8 MiB disks with 1 MiB blocks (a few MiB each). */
const built = [
  buildVhdx({ data: [0, 3, 7], zero: [5] }),
  buildVhdx({ virtualSize: 5 * MiB + 4096, logicalSectorSize: 4096, data: [1, 5], log: true }),
  buildVhdx({ virtualSize: 3 * MiB, blockSize: 2 * MiB, data: [1] }),
];
// The log seed carries a live-looking log GUID (with no valid entry) so the log scan runs.
{
  const { image, layout } = built[1]!;
  const id = Buffer.alloc(16, 0x3c);
  id.copy(image, 64 * 1024 + 48);
  id.copy(image, 128 * 1024 + 48);
  image.write('loge', layout.logOffset, 'latin1');
  id.copy(image, layout.logOffset + 32);
  image.writeUInt32LE(4096, layout.logOffset + 8);
  image.writeBigUInt64LE(1n, layout.logOffset + 16);
  resealVhdx(image);
}
const seeds = built.map((b) => b.image);

/** Metadata hot spots of the first seed (the others share the layout up to the log shift). */
function hotRanges(l: VhdxLayout): Array<[number, number]> {
  return [
    [0, 16],
    [64 * 1024, 64 * 1024 + 80],
    [128 * 1024, 128 * 1024 + 80],
    [192 * 1024, 192 * 1024 + 16 + 2 * 32],
    [256 * 1024, 256 * 1024 + 16 + 2 * 32],
    [l.metadataOffset, l.metadataOffset + 32 + 5 * 32],
    [l.metadataOffset + 64 * 1024, l.metadataOffset + 64 * 1024 + 40],
    [l.batOffset, l.batOffset + 9 * 8],
  ];
}

describe('vhdx fuzz', () => {
  it('survives mutated images (checksums as mutated)', async () => {
    const stats = await fuzzParser(seeds, { hotRanges: hotRanges(built[0]!.layout) });
    assert.ok(stats.runs > 0);
  });

  it('survives mutated images with header and region-table CRCs recomputed', async () => {
    const ranges = [...hotRanges(built[0]!.layout), ...hotRanges(built[1]!.layout).slice(5)];
    ranges.push([built[1]!.layout.logOffset, built[1]!.layout.logOffset + 64]);
    const stats = await fuzzParser(seeds, { hotRanges: ranges, fixup: resealVhdx });
    assert.ok(stats.runs > 0);
    // With the CRCs fixed, most mutants get past the headers: some must open.
    assert.ok(stats.opened > 0, JSON.stringify(stats));
  });
});
