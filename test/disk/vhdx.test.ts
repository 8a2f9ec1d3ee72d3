import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { vhdxReader } from '../../src/disk/formats/vhdx/index.js';
import {
  createVhdxWriter,
  DEFAULT_BLOCK_SIZE,
  defaultBlockSize,
} from '../../src/disk/formats/vhdx/vhdx-writer.js';
import {
  BufferSource,
  collectExtents,
  compareImages,
  convertImage,
  copyImage,
  type DiskImage,
  type Extent,
  openImage,
  openImageSource,
} from '../../src/disk/index.js';
import { isFerryError } from '../../src/errors/index.js';
import { batEntryOffset, blockPattern, buildVhdx, logEntry, resealVhdx } from '../corpus/vhdx.js';
import { MIXED_REGIONS, MIXED_SIZE, writeRawDisk } from '../helpers/disks.js';
import { qemuCheck, qemuCompare, qemuImg, qemuInfo, withTempDir } from '../helpers/qemu.js';

const MiB = 1024 * 1024;
const run = promisify(execFile);

/** qemu-io on an image; resolves with its output (pattern failures are reported in it). */
async function qemuIo(path: string, ...commands: string[]): Promise<string> {
  const args = ['-f', 'vhdx', ...commands.flatMap((c) => ['-c', c]), path];
  const { stdout, stderr } = await run('qemu-io', args);
  return stdout + stderr;
}

async function withImages<T>(
  a: string,
  b: string,
  fn: (ia: DiskImage, ib: DiskImage) => Promise<T>,
): Promise<T> {
  const ia = await openImage(a);
  try {
    const ib = await openImage(b);
    try {
      return await fn(ia, ib);
    } finally {
      await ib.close();
    }
  } finally {
    await ia.close();
  }
}

function openBuffer(buf: Buffer): Promise<DiskImage> {
  return openImageSource(new BufferSource(buf, 'test.vhdx'));
}

/** Expected contents of a builder image: data blocks hold blockPattern, everything else zeros. */
function expectedOf(size: number, blockSize: number, data: readonly number[]): Buffer {
  const out = Buffer.alloc(size);
  for (const b of data) {
    const len = Math.min(blockSize, size - b * blockSize);
    blockPattern(b, blockSize).copy(out, b * blockSize, 0, len);
  }
  return out;
}

describe('vhdx reader: images made by qemu-img', () => {
  const variants: Array<[string, string[], (e: Extent[]) => void]> = [
    ['dynamic (default, ZERO block states)', [], () => {}],
    [
      'subformat=fixed',
      ['-o', 'subformat=fixed'],
      (e) => assert.ok(e.every((x) => x.kind === 'data')),
    ],
    ['block_size=1M', ['-o', 'block_size=1M'], () => {}],
    ['block_size=8M', ['-o', 'block_size=8M'], () => {}],
    ['block_size=32M (larger than the disk)', ['-o', 'block_size=32M'], () => {}],
    [
      'block_state_zero=off (unwritten blocks NOT_PRESENT)',
      ['-o', 'block_size=1M,block_state_zero=off'],
      (e) => assert.ok(e.some((x) => x.kind === 'hole')),
    ],
    ['log_size=3M', ['-o', 'log_size=3M'], () => {}],
  ];
  for (const [name, opts, checkExtents] of variants) {
    it(`reads ${name} identically to its source`, async () => {
      await withTempDir(async (dir) => {
        const raw = join(dir, 'a.raw');
        const vhdx = join(dir, 'a.vhdx');
        await writeRawDisk(raw, MIXED_SIZE, MIXED_REGIONS);
        await qemuImg('convert', '-f', 'raw', '-O', 'vhdx', ...opts, raw, vhdx);
        assert.equal((await qemuCompare(raw, vhdx, 'raw', 'vhdx')).identical, true);
        const info = await qemuInfo(vhdx, 'vhdx');
        await withImages(raw, vhdx, async (ir, iv) => {
          assert.equal(iv.format, 'vhdx');
          assert.equal(iv.virtualSize, info['virtual-size']);
          assert.equal(iv.details().blockSize, info['cluster-size']);
          assert.equal(iv.details().logicalSectorSize, 512);
          assert.match(String(iv.details().creator), /^QEMU/);
          const ext = await collectExtents(iv.extents());
          assert.equal(
            ext.reduce((s, e) => s + e.length, 0),
            iv.virtualSize,
          );
          for (let i = 1; i < ext.length; i++) assert.notEqual(ext[i]!.kind, ext[i - 1]!.kind);
          checkExtents(ext);
          assert.equal((await compareImages(ir, iv)).identical, true);
          // An unaligned read across block boundaries.
          const off = MiB - 1000;
          assert.deepEqual(await iv.read(off, 3 * MiB + 77), await ir.read(off, 3 * MiB + 77));
        });
        const back = join(dir, 'back.raw');
        await convertImage(vhdx, back, { to: 'raw' });
        assert.equal((await qemuCompare(raw, back, 'raw', 'raw')).identical, true);
      });
    });
  }

  it('reads data past the first sector-bitmap entry (chunk ratio crossing) in a 5 GiB disk', async () => {
    await withTempDir(async (dir) => {
      const vhdx = join(dir, 'big.vhdx');
      // 1 MiB blocks, 512-byte sectors: a bitmap entry follows every 4096 payload entries (4 GiB).
      await qemuImg('create', '-f', 'vhdx', '-o', 'block_size=1M,block_state_zero=off', vhdx, '5G');
      await qemuIo(vhdx, 'write -P 0xab 4095M 2M', 'write -P 0xcd 4G 1M');
      const img = await openImage(vhdx);
      try {
        const ext = (await collectExtents(img.extents())).filter((e) => e.kind === 'data');
        assert.deepEqual(ext, [{ offset: 4095 * MiB, length: 2 * MiB, kind: 'data' }]);
        assert.deepEqual(await img.read(4095 * MiB, MiB), Buffer.alloc(MiB, 0xab));
        assert.deepEqual(await img.read(4096 * MiB, MiB), Buffer.alloc(MiB, 0xcd));
        assert.deepEqual(await img.read(4097 * MiB, MiB), Buffer.alloc(MiB));
      } finally {
        await img.close();
      }
    });
  });

  it('pages a BAT larger than the table cache (5 TiB disk, 1 MiB blocks: 40 MiB of BAT)', async () => {
    await withTempDir(async (dir) => {
      const vhdx = join(dir, 'huge.vhdx');
      await qemuImg('create', '-f', 'vhdx', '-o', 'block_size=1M,block_state_zero=off', vhdx, '5T');
      await qemuIo(vhdx, 'write -P 0x5a 1M 1M', 'write -P 0xa5 4800G 1M');
      const img = await openImage(vhdx);
      try {
        const ext = (await collectExtents(img.extents())).filter((e) => e.kind === 'data');
        assert.deepEqual(ext, [
          { offset: MiB, length: MiB, kind: 'data' },
          { offset: 4800 * 1024 * MiB, length: MiB, kind: 'data' },
        ]);
        // The first pages were evicted by the walk; reading them loads them again.
        assert.deepEqual(await img.read(MiB, MiB), Buffer.alloc(MiB, 0x5a));
        assert.deepEqual(await img.read(4800 * 1024 * MiB, MiB), Buffer.alloc(MiB, 0xa5));
      } finally {
        await img.close();
      }
    });
  });
});

describe('vhdx reader: structure handling', () => {
  const spec = { virtualSize: 8 * MiB, data: [0, 3, 7], zero: [5] };

  it('reads a built image: data, ZERO and NOT_PRESENT blocks, details', async () => {
    const { image } = buildVhdx(spec);
    const img = await openBuffer(image);
    assert.equal(img.virtualSize, 8 * MiB);
    assert.deepEqual(await collectExtents(img.extents()), [
      { offset: 0, length: MiB, kind: 'data' },
      { offset: MiB, length: 2 * MiB, kind: 'hole' },
      { offset: 3 * MiB, length: MiB, kind: 'data' },
      { offset: 4 * MiB, length: MiB, kind: 'hole' },
      { offset: 5 * MiB, length: MiB, kind: 'zero' },
      { offset: 6 * MiB, length: MiB, kind: 'hole' },
      { offset: 7 * MiB, length: MiB, kind: 'data' },
    ]);
    const expected = expectedOf(8 * MiB, MiB, spec.data);
    assert.deepEqual(await img.read(0, 8 * MiB), expected);
    assert.deepEqual(await img.read(3 * MiB - 5, 10), expected.subarray(3 * MiB - 5, 3 * MiB + 5));
    assert.deepEqual(await img.read(5 * MiB + 1, 100), Buffer.alloc(100));
    assert.equal((await img.read(0, 0)).length, 0);
    await assert.rejects(img.read(8 * MiB - 1, 2), (e) =>
      isFerryError(e, 'FERRY_READ_OUT_OF_RANGE'),
    );
    assert.deepEqual(img.details(), {
      blockSize: MiB,
      logicalSectorSize: 512,
      physicalSectorSize: 4096,
      leaveBlocksAllocated: false,
      creator: 'ferry test corpus',
      headerSequence: 11,
    });
    assert.deepEqual(img.warnings, []);
  });

  it('reads 4096-byte logical sectors and a size that is not a block multiple', async () => {
    const size = 5 * MiB + 8192;
    const { image } = buildVhdx({ virtualSize: size, logicalSectorSize: 4096, data: [1, 5] });
    const img = await openBuffer(image);
    assert.equal(img.virtualSize, size);
    assert.equal(img.details().logicalSectorSize, 4096);
    assert.deepEqual(await img.read(0, size), expectedOf(size, MiB, [1, 5]));
    const ext = await collectExtents(img.extents());
    assert.deepEqual(ext.at(-1), { offset: 5 * MiB, length: 8192, kind: 'data' });
  });

  it('merges blocks stored back to back in the file into one read', async () => {
    const { image } = buildVhdx({ data: [2, 3, 4] });
    const reads: number[] = [];
    const source = new BufferSource(image);
    const counting = Object.assign(Object.create(source) as BufferSource, {
      read: (o: number, l: number) => {
        reads.push(l);
        return source.read(o, l);
      },
    });
    const img = await vhdxReader.open(counting, {});
    reads.length = 0;
    assert.deepEqual(
      await img.read(2 * MiB, 3 * MiB),
      expectedOf(8 * MiB, MiB, [2, 3, 4]).subarray(2 * MiB, 5 * MiB),
    );
    assert.deepEqual(reads, [3 * MiB]);
  });

  it('treats UNDEFINED, UNMAPPED (3 and the v0.95 value 5) as holes', async () => {
    const { image, layout } = buildVhdx({ data: [0] });
    image.writeUInt32LE(1, batEntryOffset(layout, 1));
    image.writeUInt32LE(3 | (5 << 20), batEntryOffset(layout, 2));
    image.writeUInt32LE(5, batEntryOffset(layout, 3));
    const img = await openBuffer(image);
    const ext = await collectExtents(img.extents());
    assert.deepEqual(ext[1], { offset: MiB, length: 7 * MiB, kind: 'hole' });
  });

  it('opens with one damaged header, using the other, and says so', async () => {
    for (const [damaged, seq] of [
      [64 * 1024, 11],
      [128 * 1024, 10],
    ] as const) {
      const { image } = buildVhdx(spec);
      image[damaged + 200] = 0x42; // breaks the CRC-32C
      const img = await openBuffer(image);
      assert.equal(img.details().headerSequence, seq);
      assert.equal(img.warnings.length, 1);
      assert.equal(img.warnings[0]!.code, 'FERRY_VHDX_BAD_HEADER');
      assert.deepEqual(await img.read(0, 8 * MiB), expectedOf(8 * MiB, MiB, spec.data));
    }
  });

  it('prefers the header with the higher sequence number', async () => {
    const { image } = buildVhdx(spec);
    image.writeBigUInt64LE(99n, 64 * 1024 + 8);
    resealVhdx(image);
    assert.equal((await openBuffer(image)).details().headerSequence, 99);
  });

  it('falls back to the second region table when the first is damaged', async () => {
    const { image } = buildVhdx(spec);
    image[192 * 1024 + 500] = 1;
    const img = await openBuffer(image);
    assert.equal(img.warnings.length, 1);
    assert.deepEqual(await img.read(0, 8 * MiB), expectedOf(8 * MiB, MiB, spec.data));
  });

  it('opens when the log GUID is set but the log holds no valid entry with it', async () => {
    const id = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    const other = Buffer.from('ffeeddccbbaa99887766554433221100', 'hex');
    const variants: Array<(img: Buffer, logOffset: number) => void> = [
      () => {},
      (img, at) => {
        const e = logEntry(id);
        e.writeUInt8(e.readUInt8(100) ^ 1, 100); // CRC no longer matches
        e.copy(img, at);
      },
      (img, at) => void logEntry(other).copy(img, at + 4096),
    ];
    for (const patch of variants) {
      const { image, layout } = buildVhdx({ ...spec, log: true });
      id.copy(image, 64 * 1024 + 48);
      id.copy(image, 128 * 1024 + 48);
      patch(image, layout.logOffset);
      resealVhdx(image);
      const img = await openBuffer(image);
      assert.deepEqual(await img.read(0, 8 * MiB), expectedOf(8 * MiB, MiB, spec.data));
    }
    // The same log with a valid entry carrying the GUID must be refused.
    const { image, layout } = buildVhdx({ ...spec, log: true });
    id.copy(image, 64 * 1024 + 48);
    id.copy(image, 128 * 1024 + 48);
    logEntry(id).copy(image, layout.logOffset + layout.logLength - 4096);
    resealVhdx(image);
    await assert.rejects(openBuffer(image), (e) => isFerryError(e, 'FERRY_VHDX_LOG_REPLAY'));
  });

  it('ignores unknown optional regions and metadata items', async () => {
    const { image, layout } = buildVhdx(spec);
    for (const rt of [192 * 1024, 256 * 1024]) {
      image.writeUInt32LE(3, rt + 8);
      const at = rt + 16 + 64;
      Buffer.alloc(16, 0x77).copy(image, at);
      image.writeBigUInt64LE(BigInt(layout.metadataOffset + MiB + 8 * MiB), at + 16);
      image.writeUInt32LE(0, at + 28);
    }
    // Its offset lies past EOF: make the file long enough for the (unused) region.
    const longer = Buffer.concat([image, Buffer.alloc(10 * MiB)]);
    for (const rt of [192 * 1024, 256 * 1024]) longer.writeUInt32LE(MiB, rt + 16 + 64 + 24);
    const meta = layout.metadataOffset + 32 + 5 * 32;
    Buffer.alloc(16, 0x66).copy(longer, meta);
    longer.writeUInt32LE(1, meta + 24); // IsUser, not required
    longer.writeUInt16LE(6, layout.metadataOffset + 10);
    resealVhdx(longer);
    const img = await openBuffer(longer);
    assert.deepEqual(await img.read(0, 8 * MiB), expectedOf(8 * MiB, MiB, spec.data));
  });

  it('refuses a missing file identifier when opened directly', async () => {
    const { image } = buildVhdx(spec);
    image.write('VHDXFILE', 0, 'latin1');
    await assert.rejects(vhdxReader.open(new BufferSource(image), {}), (e) =>
      isFerryError(e, 'FERRY_VHDX_BAD_HEADER'),
    );
  });
});

describe('vhdx writer', () => {
  it('picks 2 MiB blocks, doubling them only to keep huge BATs small', () => {
    assert.equal(DEFAULT_BLOCK_SIZE, 2 * MiB);
    assert.equal(defaultBlockSize(MIXED_SIZE), 2 * MiB);
    assert.equal(defaultBlockSize(2 * 1024 ** 4), 2 * MiB);
    assert.equal(defaultBlockSize(2 * 1024 ** 4 + 512), 4 * MiB);
    assert.equal(defaultBlockSize(64 * 1024 ** 4), 64 * MiB);
  });

  it('writes a VHDX that passes qemu-img check and is identical to its source', async () => {
    await withTempDir(async (dir) => {
      const raw = join(dir, 'a.raw');
      const vhdx = join(dir, 'a.vhdx');
      await writeRawDisk(raw, MIXED_SIZE, MIXED_REGIONS);
      const r = await convertImage(raw, vhdx, { to: 'vhdx' });
      assert.equal(r.virtualSize, MIXED_SIZE);
      const check = await qemuCheck(vhdx, 'vhdx');
      assert.ok(check.ok, check.output);
      assert.equal((await qemuCompare(raw, vhdx, 'raw', 'vhdx')).identical, true);
      const info = await qemuInfo(vhdx, 'vhdx');
      assert.equal(info.format, 'vhdx');
      assert.equal(info['virtual-size'], MIXED_SIZE);
      assert.equal(info['cluster-size'], 2 * MiB);
      await withImages(raw, vhdx, async (ir, iv) => {
        assert.equal((await compareImages(ir, iv)).identical, true);
        assert.equal(iv.details().creator, 'ferry');
        // All-zero windows (2-4 MiB holds data; 6-8 MiB is an explicit zero run) are not stored.
        const data = (await collectExtents(iv.extents())).filter((e) => e.kind === 'data');
        assert.deepEqual(
          data.map((e) => [e.offset / MiB, e.length / MiB]),
          [
            [0, 6],
            [8, (MIXED_SIZE - 8 * MiB) / MiB],
          ],
        );
      });
      // Round trip back to raw through ferry's own reader.
      const back = join(dir, 'back.raw');
      await convertImage(vhdx, back, { to: 'raw' });
      assert.equal((await qemuCompare(raw, back, 'raw', 'raw')).identical, true);
    });
  });

  for (const blockSize of [MiB, 8 * MiB, 256 * MiB]) {
    it(`writes ${blockSize / MiB} MiB blocks that qemu-img reads identically`, async () => {
      await withTempDir(async (dir) => {
        const raw = join(dir, 'a.raw');
        const vhdx = join(dir, 'a.vhdx');
        await writeRawDisk(raw, MIXED_SIZE, MIXED_REGIONS);
        const img = await openImage(raw);
        try {
          const w = await createVhdxWriter(vhdx, { virtualSize: img.virtualSize }, blockSize);
          await copyImage(img, w);
        } finally {
          await img.close();
        }
        const check = await qemuCheck(vhdx, 'vhdx');
        assert.ok(check.ok, check.output);
        assert.equal((await qemuInfo(vhdx, 'vhdx'))['cluster-size'], blockSize);
        assert.equal((await qemuCompare(raw, vhdx, 'raw', 'vhdx')).identical, true);
      });
    });
  }

  it('rounds a size that is not a sector multiple up, as qemu-img does', async () => {
    await withTempDir(async (dir) => {
      const raw = join(dir, 'odd.raw');
      const size = 3 * MiB + 100;
      await writeRawDisk(raw, size, [{ offset: size - 300, length: 300, fill: 'random' }]);
      const vhdx = join(dir, 'odd.vhdx');
      const w = await createVhdxWriter(vhdx, { virtualSize: size });
      const img = await openImage(raw);
      try {
        assert.equal((await copyImage(img, w)).fileSize > 0, true);
      } finally {
        await img.close();
      }
      assert.ok((await qemuCheck(vhdx, 'vhdx')).ok);
      assert.equal((await qemuInfo(vhdx, 'vhdx'))['virtual-size'], 3 * MiB + 512);
      const tiny = await createVhdxWriter(join(dir, 'tiny.vhdx'), { virtualSize: 100 });
      assert.equal((await tiny.finish()).virtualSize, 512);
      // The extra bytes read as zeros, so the disks compare equal.
      assert.equal((await qemuCompare(raw, vhdx, 'raw', 'vhdx')).identical, true);
    });
  });

  it('writes data past the first sector-bitmap entry of a 6 GiB disk correctly', async () => {
    await withTempDir(async (dir) => {
      const vhdx = join(dir, 'six.vhdx');
      const size = 6 * 1024 * MiB;
      const w = await createVhdxWriter(vhdx, { virtualSize: size });
      // 2 MiB blocks, 512-byte sectors: a bitmap entry follows every 2048 payload entries (4 GiB).
      const chunks: Array<[number, number]> = [
        [0, 0xa1],
        [4094 * MiB, 0xb2],
        [4096 * MiB, 0xc3],
        [size - 2 * MiB, 0xd4],
      ];
      for (const [off, fill] of chunks) await w.write(off, Buffer.alloc(2 * MiB, fill));
      await w.finish();
      const check = await qemuCheck(vhdx, 'vhdx');
      assert.ok(check.ok, check.output);
      const out = await qemuIo(
        vhdx,
        ...chunks.map(([off, fill]) => `read -P ${fill} ${off} 2M`),
        `read -P 0 ${2 * MiB} 2M`,
        `read -P 0 ${4092 * MiB} 2M`,
        `read -P 0 ${4098 * MiB} 2M`,
      );
      assert.doesNotMatch(out, /fail|error/i);
      const img = await openImage(vhdx);
      try {
        const data = (await collectExtents(img.extents())).filter((e) => e.kind === 'data');
        assert.deepEqual(
          data.map((e) => [e.offset / MiB, e.length / MiB]),
          [
            [0, 2],
            [4094, 4],
            [6142, 2],
          ],
        );
        assert.deepEqual(
          await img.read(4095 * MiB, 2 * MiB),
          Buffer.concat([Buffer.alloc(MiB, 0xb2), Buffer.alloc(MiB, 0xc3)]),
        );
      } finally {
        await img.close();
      }
      // Only four 2 MiB blocks are stored after the 4 MiB of header, log, BAT and metadata.
      assert.equal((await stat(vhdx)).size, 4 * MiB + 4 * 2 * MiB);
    });
  });

  it('keeps zero 4 KiB runs inside a stored block as file holes', async () => {
    await withTempDir(async (dir) => {
      const vhdx = join(dir, 's.vhdx');
      const w = await createVhdxWriter(vhdx, { virtualSize: 2 * MiB });
      const buf = Buffer.alloc(2 * MiB);
      buf.fill(1, 0, 4096);
      buf.fill(2, 2 * MiB - 4096);
      await w.write(0, buf);
      await w.finish();
      const st = await stat(vhdx);
      assert.ok(st.blocks * 512 < 2 * MiB, `allocated ${st.blocks * 512} bytes`);
      const img = await openImage(vhdx);
      try {
        assert.deepEqual(await img.read(0, 2 * MiB), buf);
      } finally {
        await img.close();
      }
    });
  });

  it('abort leaves nothing behind; out-of-order writes are refused', async () => {
    await withTempDir(async (dir) => {
      const w = await createVhdxWriter(join(dir, 'x.vhdx'), { virtualSize: 8 * MiB });
      await w.write(2 * MiB, Buffer.alloc(2 * MiB, 1));
      await assert.rejects(w.write(0, Buffer.alloc(2 * MiB, 1)), (e) =>
        isFerryError(e, 'FERRY_INTERNAL'),
      );
      await w.abort();
      assert.deepEqual(await readdir(dir), []);
      await writeFile(join(dir, 'exists.vhdx'), 'x');
      await assert.rejects(createVhdxWriter(join(dir, 'exists.vhdx'), { virtualSize: MiB }), (e) =>
        isFerryError(e, 'FERRY_DESTINATION_EXISTS'),
      );
      await assert.rejects(
        createVhdxWriter(join(dir, 'y.vhdx'), { virtualSize: 65 * 1024 ** 4 }),
        (e) => isFerryError(e, 'FERRY_IMAGE_TOO_LARGE'),
      );
    });
  });

  it('converts vhdx to vhdx identically (qemu-img made source)', async () => {
    await withTempDir(async (dir) => {
      const raw = join(dir, 'a.raw');
      const q = join(dir, 'q.vhdx');
      const f = join(dir, 'f.vhdx');
      await writeRawDisk(raw, MIXED_SIZE, MIXED_REGIONS);
      await qemuImg('convert', '-f', 'raw', '-O', 'vhdx', '-o', 'block_size=1M', raw, q);
      await convertImage(q, f, { to: 'vhdx' });
      assert.ok((await qemuCheck(f, 'vhdx')).ok);
      assert.equal((await qemuCompare(q, f, 'vhdx', 'vhdx')).identical, true);
    });
  });
});
