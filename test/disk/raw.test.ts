import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  collectExtents,
  compareImages,
  convertImage,
  imageInfo,
  openImage,
} from '../../src/disk/index.js';
import { isFerryError } from '../../src/errors/index.js';
import { MIXED_REGIONS, MIXED_SIZE, pseudoRandom, writeRawDisk } from '../helpers/disks.js';
import { qemuCompare, withTempDir } from '../helpers/qemu.js';

describe('raw', () => {
  it('maps holes from SEEK_HOLE or reports everything as data, and reads back the bytes', async () => {
    await withTempDir(async (dir) => {
      const p = join(dir, 'a.img');
      await writeRawDisk(p, MIXED_SIZE, MIXED_REGIONS);
      const img = await openImage(p);
      try {
        assert.equal(img.format, 'raw');
        assert.equal(img.virtualSize, MIXED_SIZE);
        const ext = await collectExtents(img.extents());
        assert.equal(
          ext.reduce((s, e) => s + e.length, 0),
          MIXED_SIZE,
        );
        const head = await img.read(0, 70 * 1024);
        assert.deepEqual(head, pseudoRandom(70 * 1024, 'ferry:0'));
      } finally {
        await img.close();
      }
    });
  });

  it('converts raw to sparse raw identical per qemu-img compare', async () => {
    await withTempDir(async (dir) => {
      const a = join(dir, 'a.img');
      const b = join(dir, 'b.raw');
      await writeRawDisk(a, MIXED_SIZE, MIXED_REGIONS);
      await convertImage(a, b, { to: 'raw' });
      assert.equal((await qemuCompare(a, b, 'raw', 'raw')).identical, true);
      const ia = await openImage(a);
      const ib = await openImage(b);
      try {
        assert.equal((await compareImages(ia, ib)).identical, true);
        assert.equal((await imageInfo(ib)).virtualSize, MIXED_SIZE);
      } finally {
        await ia.close();
        await ib.close();
      }
    });
  });

  it('finds the first differing offset as qemu-img compare does', async () => {
    await withTempDir(async (dir) => {
      const a = join(dir, 'a.img');
      const b = join(dir, 'b.img');
      await writeRawDisk(a, MIXED_SIZE, MIXED_REGIONS);
      await writeRawDisk(b, MIXED_SIZE, [
        ...MIXED_REGIONS,
        { offset: 3 * 1024 * 1024 + 777, length: 1, fill: 0xee },
      ]);
      const q = await qemuCompare(a, b, 'raw', 'raw');
      assert.equal(q.identical, false);
      const ia = await openImage(a);
      const ib = await openImage(b);
      try {
        const r = await compareImages(ia, ib);
        assert.equal(r.identical, false);
        assert.equal(r.firstDifferingByte, 3 * 1024 * 1024 + 777);
        assert.match(q.output, new RegExp(`offset ${r.firstDifference}!`));
      } finally {
        await ia.close();
        await ib.close();
      }
    });
  });

  it('refuses a declared raw image whose bytes are qcow2 (format confusion)', async () => {
    await withTempDir(async (dir) => {
      const p = join(dir, 'evil.raw');
      const buf = Buffer.alloc(65536);
      buf.writeUInt32BE(0x514649fb, 0);
      buf.writeUInt32BE(3, 4);
      await writeFile(p, buf);
      await assert.rejects(openImage(p, { format: 'raw' }), (e) =>
        isFerryError(e, 'FERRY_FORMAT_MISMATCH'),
      );
    });
  });
});
