import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { buildVdi } from '../corpus/vdi.js';
import { writeRawDisk } from '../helpers/disks.js';
import { fuzzParser } from '../helpers/fuzz.js';
import { qemuImg, withTempDir } from '../helpers/qemu.js';

const MiB = 1024 * 1024;

/** Header fields and the start of the block map (0x200..). */
const HOT: ReadonlyArray<readonly [number, number]> = [
  [0x40, 0x54],
  [0x154, 0x1c8],
  [0x200, 0x240],
];

describe('vdi fuzz', () => {
  it('survives mutated VDIs (qemu-made and built)', async () => {
    const seeds = [
      buildVdi({ diskSize: 4 * MiB, data: [0, 3], discarded: [1] }),
      buildVdi({ diskSize: 2 * MiB + 1536, data: [2, 0], blocksInImage: 5 }),
      buildVdi({ diskSize: 3 * MiB, data: [0, 1, 2], imageType: 2 }),
    ];
    await withTempDir(async (dir) => {
      const raw = join(dir, 'a.raw');
      const vdi = join(dir, 'a.vdi');
      await writeRawDisk(raw, 3 * MiB, [{ offset: MiB, length: 4096, fill: 0x5a }]);
      await qemuImg('convert', '-f', 'raw', '-O', 'vdi', raw, vdi);
      seeds.push(await readFile(vdi));
    });
    const stats = await fuzzParser(seeds, { hotRanges: HOT });
    assert.ok(stats.runs > 0);
    assert.ok(stats.opened > 0, JSON.stringify(stats));
  });
});
