import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { vdiReader } from '../../src/disk/formats/vdi/index.js';
import {
  BufferSource,
  collectExtents,
  compareImages,
  convertImage,
  type Extent,
  imageInfo,
  openImage,
} from '../../src/disk/index.js';
import { isFerryError } from '../../src/errors/index.js';
import { buildVdi, VDI_OFF, vdiBlockPattern } from '../corpus/vdi.js';
import { MIXED_REGIONS, MIXED_SIZE, writeRawDisk } from '../helpers/disks.js';
import { qemuCompare, qemuImg, qemuInfo, withTempDir } from '../helpers/qemu.js';

const MiB = 1024 * 1024;

/** qemu-img map's data ranges, merged. */
async function qemuDataRanges(path: string): Promise<Array<[number, number]>> {
  const map = JSON.parse(await qemuImg('map', '--output=json', '-f', 'vdi', path)) as Array<{
    start: number;
    length: number;
    data: boolean;
  }>;
  const out: Array<[number, number]> = [];
  for (const m of map) {
    if (!m.data) continue;
    const last = out[out.length - 1];
    if (last !== undefined && last[1] === m.start) last[1] = m.start + m.length;
    else out.push([m.start, m.start + m.length]);
  }
  return out;
}

function dataRanges(extents: readonly Extent[]): Array<[number, number]> {
  return extents.filter((e) => e.kind === 'data').map((e) => [e.offset, e.offset + e.length]);
}

/** Opens `a` (raw) and `b` with ferry and asserts ferry and qemu-img both call them identical. */
async function assertSame(raw: string, other: string, fmt: string): Promise<void> {
  const q = await qemuCompare(raw, other, 'raw', fmt);
  assert.equal(q.identical, true, q.output);
  const ia = await openImage(raw);
  const ib = await openImage(other);
  try {
    const r = await compareImages(ia, ib);
    assert.equal(r.identical, true, JSON.stringify(r));
  } finally {
    await ia.close();
    await ib.close();
  }
}

describe('vdi', () => {
  it('reads a dynamic VDI written by qemu-img: same bytes, same allocation as qemu-img map', async () => {
    await withTempDir(async (dir) => {
      const raw = join(dir, 'a.raw');
      const vdi = join(dir, 'a.vdi');
      await writeRawDisk(raw, MIXED_SIZE, MIXED_REGIONS);
      await qemuImg('convert', '-f', 'raw', '-O', 'vdi', raw, vdi);
      await assertSame(raw, vdi, 'vdi');
      const img = await openImage(vdi);
      try {
        assert.equal(img.format, 'vdi');
        assert.equal(img.virtualSize, MIXED_SIZE);
        const d = img.details();
        assert.equal(d.imageType, 'dynamic');
        assert.equal(d.blockSize, MiB);
        assert.match(
          String(d.uuid),
          /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
        );
        const info = await qemuInfo(vdi, 'vdi');
        assert.equal(info['virtual-size'], img.virtualSize);
        const ext = await collectExtents(img.extents());
        assert.equal(
          ext.reduce((s, e) => s + e.length, 0),
          MIXED_SIZE,
        );
        // Holes where qemu-img left blocks unallocated; the data matches qemu-img map.
        assert.ok(ext.some((e) => e.kind === 'hole'));
        assert.deepEqual(dataRanges(ext), await qemuDataRanges(vdi));
      } finally {
        await img.close();
      }
    });
  });

  it('reads a static (preallocated) VDI written by qemu-img', async () => {
    await withTempDir(async (dir) => {
      const raw = join(dir, 'a.raw');
      const vdi = join(dir, 's.vdi');
      await writeRawDisk(raw, MIXED_SIZE, MIXED_REGIONS);
      await qemuImg('convert', '-f', 'raw', '-O', 'vdi', '-o', 'static=on', raw, vdi);
      await assertSame(raw, vdi, 'vdi');
      const img = await openImage(vdi);
      try {
        assert.equal(img.details().imageType, 'static');
        const ext = await collectExtents(img.extents());
        assert.deepEqual(ext, [{ offset: 0, length: MIXED_SIZE, kind: 'data' }]);
      } finally {
        await img.close();
      }
    });
  });

  it('reads an empty VDI and one whose size is not a multiple of the block size', async () => {
    await withTempDir(async (dir) => {
      const empty = join(dir, 'e.vdi');
      await qemuImg('create', '-f', 'vdi', empty, '3M');
      const img = await openImage(empty);
      try {
        assert.deepEqual(await collectExtents(img.extents()), [
          { offset: 0, length: 3 * MiB, kind: 'hole' },
        ]);
        assert.ok((await img.read(MiB - 10, 20)).equals(Buffer.alloc(20)));
      } finally {
        await img.close();
      }
      const size = 5 * MiB + 7 * 512;
      const raw = join(dir, 'odd.raw');
      const vdi = join(dir, 'odd.vdi');
      await writeRawDisk(raw, size, [
        { offset: 0, length: 4096, fill: 'random' },
        { offset: size - 1024, length: 1024, fill: 'random' },
      ]);
      await qemuImg('convert', '-f', 'raw', '-O', 'vdi', raw, vdi);
      await assertSame(raw, vdi, 'vdi');
    });
  });

  it('rounds a disk size that is not a multiple of 512 up, as qemu does, with a warning', async () => {
    await withTempDir(async (dir) => {
      const raw = join(dir, 'a.raw');
      const vdi = join(dir, 'a.vdi');
      await writeRawDisk(raw, MIXED_SIZE, MIXED_REGIONS);
      await qemuImg('convert', '-f', 'raw', '-O', 'vdi', raw, vdi);
      const buf = await readFile(vdi);
      buf.writeBigUInt64LE(BigInt(MIXED_SIZE - 100), VDI_OFF.diskSize);
      await writeFile(vdi, buf);
      const info = await qemuInfo(vdi, 'vdi');
      const img = await openImage(vdi);
      try {
        assert.equal(img.virtualSize, info['virtual-size']);
        assert.equal(img.virtualSize, MIXED_SIZE);
        assert.deepEqual(
          img.warnings.map((w) => w.code),
          ['VDI_ODD_SIZE'],
        );
      } finally {
        await img.close();
      }
      await assertSame(raw, vdi, 'vdi');
    });
  });

  it('reads discarded blocks as zero extents and agrees with qemu-img', async () => {
    await withTempDir(async (dir) => {
      const vdi = join(dir, 'd.vdi');
      const out = join(dir, 'd.raw');
      // Blocks 0, 1 and 3 stored; block 1 then discarded; block 2 discarded; the rest holes.
      const buf = buildVdi({ diskSize: 6 * MiB, data: [0, 1, 3], discarded: [2] });
      buf.writeUInt32LE(0xfffffffe, 0x200 + 4);
      await writeFile(vdi, buf);
      const img = await openImage(vdi);
      try {
        assert.deepEqual(await collectExtents(img.extents()), [
          { offset: 0, length: MiB, kind: 'data' },
          { offset: MiB, length: 2 * MiB, kind: 'zero' },
          { offset: 3 * MiB, length: MiB, kind: 'data' },
          { offset: 4 * MiB, length: 2 * MiB, kind: 'hole' },
        ]);
        const all = await img.read(0, 6 * MiB);
        assert.ok(all.subarray(0, MiB).equals(vdiBlockPattern(0)));
        assert.ok(all.subarray(MiB, 3 * MiB).equals(Buffer.alloc(2 * MiB)));
        assert.ok(all.subarray(3 * MiB, 4 * MiB).equals(vdiBlockPattern(3)));
        // A read crossing blocks returns the right slices.
        const cross = await img.read(MiB - 512, 3 * MiB);
        assert.ok(cross.subarray(0, 512).equals(vdiBlockPattern(0).subarray(MiB - 512)));
        assert.ok(cross.subarray(512 + 2 * MiB).equals(vdiBlockPattern(3).subarray(0, MiB - 512)));
      } finally {
        await img.close();
      }
      await convertImage(vdi, out, { to: 'raw' });
      assert.equal((await qemuCompare(vdi, out, 'vdi', 'raw')).identical, true);
      const back = await openImage(out);
      try {
        assert.equal((await imageInfo(back)).virtualSize, 6 * MiB);
      } finally {
        await back.close();
      }
    });
  });

  it('converts a qemu-made VDI to raw and VHDX that qemu-img calls identical', async () => {
    await withTempDir(async (dir) => {
      const raw = join(dir, 'a.raw');
      const vdi = join(dir, 'a.vdi');
      await writeRawDisk(raw, MIXED_SIZE, MIXED_REGIONS);
      await qemuImg('convert', '-f', 'raw', '-O', 'vdi', raw, vdi);
      for (const to of ['raw', 'vhdx'] as const) {
        const out = join(dir, `out.${to}`);
        const r = await convertImage(vdi, out, { to });
        assert.equal(r.from, 'vdi');
        assert.equal(
          (await qemuCompare(vdi, out, 'vdi', to === 'raw' ? 'raw' : 'vhdx')).identical,
          true,
        );
      }
    });
  });

  it('refuses hostile headers through the reader itself', async () => {
    const good = buildVdi({ data: [1] });
    const cases: Array<[string, (b: Buffer) => void, string]> = [
      ['bad signature', (b) => b.writeUInt32LE(0, VDI_OFF.signature), 'FERRY_VDI_BAD_HEADER'],
      [
        'static with parent',
        (b) => b.fill(1, VDI_OFF.uuidParent, VDI_OFF.uuidParent + 16),
        'FERRY_VDI_DIFFERENCING',
      ],
    ];
    for (const [name, patch, code] of cases) {
      const b = Buffer.from(good);
      patch(b);
      await assert.rejects(vdiReader.open(new BufferSource(b, name), {}), (e) =>
        isFerryError(e, code as 'FERRY_VDI_BAD_HEADER'),
      );
    }
    const img = await vdiReader.open(new BufferSource(good), {});
    assert.ok((await img.read(MiB, MiB)).equals(vdiBlockPattern(1)));
    assert.equal(img.details().description, 'ferry corpus');
  });
});
