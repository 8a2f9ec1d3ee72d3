import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openImage } from '../../src/disk/index.js';
import { MIXED_REGIONS, MIXED_SIZE, writeRawDisk } from '../helpers/disks.js';
import { qemuImg, withTempDir } from '../helpers/qemu.js';

/** Offsets and lengths that start and end inside clusters, holes, zero runs and the last sector. */
function probes(size: number): Array<[number, number]> {
  const out: Array<[number, number]> = [[0, size]];
  let x = 12345;
  for (let i = 0; i < 60; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const off = x % size;
    x = (x * 1103515245 + 12345) % 2 ** 31;
    out.push([off, Math.min(size - off, 1 + (x % (3 * 1024 * 1024)))]);
  }
  return out;
}

describe('readInto', () => {
  for (const [label, convert] of [
    ['raw', null],
    ['qcow2', ['-O', 'qcow2']],
    ['qcow2 compressed', ['-O', 'qcow2', '-c']],
    ['qcow2 with subclusters', ['-O', 'qcow2', '-o', 'extended_l2=on,cluster_size=128k']],
  ] as const) {
    it(`fills a buffer in place with what read returns (${label})`, async () => {
      await withTempDir(async (dir) => {
        const raw = join(dir, 'disk.raw');
        await writeRawDisk(raw, MIXED_SIZE, MIXED_REGIONS);
        let path = raw;
        if (convert !== null) {
          path = join(dir, 'disk.qcow2');
          await qemuImg('convert', '-f', 'raw', ...convert, raw, path);
        }
        const image = await openImage(path);
        try {
          assert.ok(image.readInto !== undefined, `${image.format} reads in place`);
          for (const [off, len] of probes(image.virtualSize)) {
            const expected = await image.read(off, len);
            // Garbage first: readInto must write every byte, zeros included.
            const target = Buffer.alloc(len, 0xa5);
            await image.readInto(target, off);
            assert.ok(target.equals(expected), `${label}: ${off}+${len}`);
          }
          await assert.rejects(image.readInto(Buffer.alloc(2), image.virtualSize - 1), {
            code: 'FERRY_READ_OUT_OF_RANGE',
          });
        } finally {
          await image.close();
        }
      });
    });
  }
});
