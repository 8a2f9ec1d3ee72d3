import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildSparseVmdk, buildStreamVmdk, type VmdkLayout } from '../corpus/vmdk.js';
import { fuzzParser } from '../helpers/fuzz.js';

/** Metadata hot spots: header, descriptor, directory, tables, grain markers, footer. */
function hotRanges(l: VmdkLayout): Array<[number, number]> {
  const r: Array<[number, number]> = [
    [0, 80],
    [l.descriptorOffset, l.descriptorOffset + l.descriptorBytes],
    [l.gdOffset, l.gdOffset + l.gdBytes],
  ];
  for (const off of l.gtOffsets.values()) r.push([off, off + 64]);
  for (const off of l.grainOffsets.values()) r.push([off, off + 16]);
  if (l.footerOffset >= 0) {
    r.push([l.footerOffset - 512, l.footerOffset - 496]);
    r.push([l.footerOffset, l.footerOffset + 80]);
    r.push([l.footerOffset + 512, l.footerOffset + 528]);
  }
  return r;
}

describe('vmdk fuzz', () => {
  it('survives mutated monolithicSparse images', async () => {
    const a = buildSparseVmdk({ data: { 0: 1, 5: 2, 17: 3, 62: 4 }, zero: [3, 40] });
    const b = buildSparseVmdk({
      capacity: 4096 + 3,
      grainSize: 8,
      numGTEsPerGT: 64,
      data: { 1: 9, 63: 8, 64: 7, 512: 6 },
    });
    const stats = await fuzzParser([a.image, b.image], { hotRanges: hotRanges(a) });
    assert.ok(stats.runs > 0);
    assert.ok(stats.opened > 0, JSON.stringify(stats));
  });

  it('survives mutated streamOptimized images', async () => {
    const a = buildStreamVmdk({ data: { 0: 1, 5: 2, 17: 3, 62: 4 } });
    const b = buildStreamVmdk({
      capacity: 2048,
      grainSize: 128,
      numGTEsPerGT: 512,
      data: { 1: 5, 7: 6 },
    });
    const stats = await fuzzParser([a.image, b.image], { hotRanges: hotRanges(a) });
    assert.ok(stats.runs > 0);
    assert.ok(stats.opened > 0, JSON.stringify(stats));
  });
});
