import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { constants } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { ByteRange } from '../../src/disk/byte-source.js';
import { collectExtents } from '../../src/disk/extents.js';
import { FileSource } from '../../src/disk/file-source.js';
import { rawReader } from '../../src/disk/formats/raw/index.js';
import { nativeBinding, seekDataRanges } from '../../src/disk/seek-data.js';
import type { Extent } from '../../src/disk/types.js';
import { pseudoRandom, type Region, writeRawDisk } from '../helpers/disks.js';
import { withTempDir } from '../helpers/qemu.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

const skip =
  process.platform !== 'linux'
    ? 'SEEK_DATA ranges are only asked for on Linux'
    : nativeBinding() === null
      ? 'the native binding is not built (`npm ci` or `npm run install` builds it when a C compiler is present)'
      : false;

/** Data written at known offsets; every gap between them is at least 1 MiB. */
const SIZE = 64 * MiB + 1234;
const REGIONS: readonly Region[] = [
  { offset: 0, length: 70 * 1024, fill: 'random' },
  { offset: 3 * MiB, length: 4096, fill: 0x5a },
  { offset: 10 * MiB - 100, length: 5000, fill: 'random' },
  { offset: 20 * MiB, length: 4 * MiB, fill: 'random' },
  // Explicitly written zeros are stored data too.
  { offset: 30 * MiB + 512, length: 1 * MiB, fill: 'zero' },
  { offset: SIZE - 10, length: 10, fill: 'random' },
];

/**
 * Holes are only block-granular, and some filesystems allocate in larger
 * units (ZFS records, say): gap interiors are checked with this margin.
 */
const MARGIN = 128 * 1024;

/** Skips when the filesystem under `path` stores no holes (the whole file is allocated). */
async function sparseOrSkip(
  t: { skip(reason: string): void },
  path: string,
  size: number,
): Promise<boolean> {
  const st = await stat(path);
  if (st.blocks * 512 >= size) {
    t.skip(`the filesystem holding ${path} does not keep holes`);
    return false;
  }
  return true;
}

async function rangesOf(path: string, offset: number, length: number, perCall?: number) {
  const fh = await open(path, 'r');
  try {
    const r = seekDataRanges(fh.fd, offset, length, perCall);
    assert.ok(r !== undefined, 'the binding is loaded, so the answer is known');
    return r;
  } finally {
    await fh.close();
  }
}

function assertWellFormed(ranges: readonly ByteRange[], from: number, to: number): void {
  let prevEnd = -1;
  for (const r of ranges) {
    assert.ok(r.length > 0, `empty range at ${r.offset}`);
    assert.ok(r.offset >= from && r.offset + r.length <= to, `range ${r.offset} out of bounds`);
    assert.ok(r.offset > prevEnd, `ranges out of order, overlapping or unmerged at ${r.offset}`);
    prevEnd = r.offset + r.length;
  }
}

function contains(ranges: readonly ByteRange[], offset: number, length: number): boolean {
  return ranges.some((r) => r.offset <= offset && offset + length <= r.offset + r.length);
}

function intersects(ranges: readonly ByteRange[], offset: number, length: number): boolean {
  return ranges.some((r) => r.offset < offset + length && offset < r.offset + r.length);
}

/** The gaps between the written regions (and after the last one), at least 1 MiB each. */
function gaps(regions: readonly Region[], size: number): ByteRange[] {
  const out: ByteRange[] = [];
  let pos = 0;
  for (const r of [...regions, { offset: size, length: 0 }]) {
    if (r.offset - pos >= MiB) out.push({ offset: pos, length: r.offset - pos });
    pos = r.offset + r.length;
  }
  return out;
}

describe('SEEK_DATA / SEEK_HOLE binding', { skip }, () => {
  it('reports exactly the written regions of a sparse file, block-granular', async (t) => {
    await withTempDir(async (dir) => {
      const p = join(dir, 'sparse.img');
      await writeRawDisk(p, SIZE, REGIONS);
      if (!(await sparseOrSkip(t, p, SIZE))) return;
      const block = (await stat(p)).blksize;
      const ranges = await rangesOf(p, 0, SIZE);
      assertWellFormed(ranges, 0, SIZE);
      for (const r of ranges) {
        assert.equal(r.offset % block, 0, `range start ${r.offset} is not block-aligned`);
        const end = r.offset + r.length;
        assert.ok(end % block === 0 || end === SIZE, `range end ${end} is not block-aligned`);
      }
      for (const r of REGIONS) {
        assert.ok(contains(ranges, r.offset, r.length), `region at ${r.offset} is not data`);
      }
      const holes = gaps(REGIONS, SIZE);
      assert.equal(holes.length, 5);
      for (const g of holes) {
        assert.ok(
          !intersects(ranges, g.offset + MARGIN, g.length - 2 * MARGIN),
          `gap at ${g.offset} (+${g.length}) is reported as data: ${JSON.stringify(ranges)}`,
        );
      }
      // Nothing beyond the written blocks, rounded to the allocation unit.
      const stored = ranges.reduce((s, r) => s + r.length, 0);
      assert.ok(stored <= REGIONS.reduce((s, r) => s + r.length + 2 * MARGIN, 0));
    });
  });

  it('clamps the answer to the window asked about', async (t) => {
    await withTempDir(async (dir) => {
      const p = join(dir, 'sparse.img');
      await writeRawDisk(p, SIZE, REGIONS);
      if (!(await sparseOrSkip(t, p, SIZE))) return;
      const from = 20 * MiB + 100;
      const ranges = await rangesOf(p, from, 10 * MiB);
      assertWellFormed(ranges, from, from + 10 * MiB);
      assert.equal(ranges[0]?.offset, from, 'the window starts inside a data region');
      assert.ok(contains(ranges, from, 4 * MiB - 100));
      assert.ok(contains(ranges, 30 * MiB + 512, from + 10 * MiB - (30 * MiB + 512)));
      assert.deepEqual(await rangesOf(p, 40 * MiB, 8 * MiB), [], 'a window inside a hole');
      assert.deepEqual(await rangesOf(p, SIZE, 4096), [], 'a window at the end of the file');
      assert.deepEqual(await rangesOf(p, 0, 0), []);
    });
  });

  it('continues past the per-call cap and gives the same complete answer', async (t) => {
    await withTempDir(async (dir) => {
      const p = join(dir, 'many.img');
      const size = 64 * MiB;
      const regions: Region[] = [];
      for (let i = 0; i < 40; i++) regions.push({ offset: i * MiB + 4096, length: 4096, fill: i });
      await writeRawDisk(p, size, regions);
      if (!(await sparseOrSkip(t, p, size))) return;
      const all = await rangesOf(p, 0, size);
      for (const perCall of [1, 3, 7, 40, 41]) {
        assert.deepEqual(await rangesOf(p, 0, size, perCall), all, `perCall ${perCall}`);
      }
      assert.equal(all.length, 40);
    });
  });

  it('reports a file without holes as one range', async () => {
    await withTempDir(async (dir) => {
      const p = join(dir, 'full.img');
      const size = 5 * MiB + 7;
      const fh = await open(p, 'w');
      try {
        await fh.write(pseudoRandom(size, 'full'), 0, size, 0);
      } finally {
        await fh.close();
      }
      assert.deepEqual(await rangesOf(p, 0, size), [{ offset: 0, length: size }]);
      assert.deepEqual(await rangesOf(p, 4096, 8192), [{ offset: 4096, length: 8192 }]);
    });
  });

  it('refuses a descriptor that is not open with FERRY_IO', () => {
    // Far above any open-file limit, so never a live descriptor.
    assert.throws(() => seekDataRanges(1_000_000_000, 0, MiB), { code: 'FERRY_IO' });
  });

  it("makes the raw reader's extents() report holes, merged across its 1 GiB windows", async (t) => {
    await withTempDir(async (dir) => {
      const p = join(dir, 'raw.img');
      const size = 2 * GiB + 3 * MiB;
      const regions: Region[] = [
        { offset: 0, length: MiB, fill: 'random' },
        { offset: GiB - 8192, length: 16384, fill: 'random' },
        { offset: 2 * GiB + MiB, length: 2 * MiB, fill: 'random' },
      ];
      await writeRawDisk(p, size, regions);
      if (!(await sparseOrSkip(t, p, size))) return;
      const source = await FileSource.open(p);
      const image = await rawReader.open(source, {});
      let extents: Extent[];
      try {
        extents = await collectExtents(image.extents());
      } finally {
        await image.close();
      }
      assert.deepEqual(extents, [
        { offset: 0, length: MiB, kind: 'data' },
        { offset: MiB, length: GiB - 8192 - MiB, kind: 'hole' },
        { offset: GiB - 8192, length: 16384, kind: 'data' },
        { offset: GiB + 8192, length: GiB + MiB - 8192, kind: 'hole' },
        { offset: 2 * GiB + MiB, length: 2 * MiB, kind: 'data' },
      ]);
    });
  });
});

describe('startWriteback binding', { skip }, () => {
  it('refuses a non-descriptor, resolves false on a pipe and true on a file', async () => {
    const start = nativeBinding()?.startWriteback;
    assert.ok(start !== undefined, 'the binding has startWriteback');
    assert.throws(() => start(-1), TypeError);
    assert.throws(() => start('3' as unknown as number), TypeError);
    await withTempDir(async (dir) => {
      // A FIFO has no pages to write back: unsupported (ESPIPE), not a failure.
      const fifo = join(dir, 'fifo');
      assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
      const fifoHandle = await open(fifo, constants.O_RDWR);
      try {
        assert.equal(await start(fifoHandle.fd), false);
      } finally {
        await fifoHandle.close();
      }
      const fh = await open(join(dir, 'f.img'), 'w');
      try {
        await fh.write(Buffer.alloc(1 << 20, 7), 0, 1 << 20, 0);
        assert.equal(await start(fh.fd), true);
      } finally {
        await fh.close();
      }
    });
  });
});
