import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildQcow2, type Qcow2Layout } from '../corpus/qcow2.js';
import { fuzzParser } from '../helpers/fuzz.js';

/** Header, refcount table, L1 and the start of each L2 table, plus compressed data. */
function hotRanges(l: Qcow2Layout, entrySize: number): Array<[number, number]> {
  const cs = l.clusterSize;
  const ranges: Array<[number, number]> = [
    [0, l.headerLength + 16],
    [l.refcountTableOffset, l.refcountTableOffset + 16],
    [l.l1Offset, l.l1Offset + l.l1Size * 8],
  ];
  for (const off of l.l2Offsets) if (off !== 0) ranges.push([off, off + 8 * entrySize]);
  for (const host of l.hosts.values()) {
    if (host % cs !== 0) ranges.push([host, host + 64]);
  }
  return ranges;
}

describe('qcow2 fuzz', () => {
  it('survives mutated 4 KiB-cluster images (plain, v2, deflate, zstd)', async () => {
    const v3 = buildQcow2();
    const seeds = [
      v3.image,
      buildQcow2({
        version: 2,
        clusters: [
          { index: 0, kind: 'data', fill: 1 },
          { index: 4, kind: 'compressed', fill: 2 },
          { index: 520, kind: 'data', fill: 3 },
        ],
      }).image,
      buildQcow2({ compression: 'zstd' }).image,
    ];
    const stats = await fuzzParser(seeds, { hotRanges: hotRanges(v3.layout, 8) });
    assert.ok(stats.runs > 0);
    assert.ok(stats.opened > 0, JSON.stringify(stats));
  });

  it('survives mutated extended-L2 images', async () => {
    const ext = buildQcow2({
      clusterBits: 14,
      extendedL2: true,
      clusters: [
        { index: 0, kind: 'data', fill: 1 },
        { index: 1, kind: 'sub', fill: 2, alloc: 0x0000ffff, zero: 0xff000000 },
        { index: 2, kind: 'zero' },
        { index: 3, kind: 'compressed', fill: 9 },
        { index: 520, kind: 'sub', fill: 4, alloc: 0x1, zero: 0x2 },
      ],
    });
    const seeds = [
      ext.image,
      buildQcow2({
        clusterBits: 14,
        extendedL2: true,
        compression: 'zstd',
        clusters: [
          { index: 2, kind: 'compressed', fill: 5 },
          { index: 3, kind: 'sub', fill: 6, alloc: 0xf0f0f0f0 },
        ],
      }).image,
    ];
    const stats = await fuzzParser(seeds, { hotRanges: hotRanges(ext.layout, 16) });
    assert.ok(stats.runs > 0);
    assert.ok(stats.opened > 0, JSON.stringify(stats));
  });
});
