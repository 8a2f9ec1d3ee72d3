import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { VmdkStreamWriter, vmdkReader } from '../../src/disk/formats/vmdk/index.js';
import {
  BufferSource,
  collectExtents,
  compareImages,
  convertImage,
  type Extent,
  FileSource,
  openImage,
  SliceSource,
} from '../../src/disk/index.js';
import { OutputFile } from '../../src/disk/output-file.js';
import { isFerryError } from '../../src/errors/index.js';
import {
  MIXED_REGIONS,
  MIXED_SIZE,
  pseudoRandom,
  type Region,
  writeRawDisk,
} from '../helpers/disks.js';
import { qemuCheck, qemuCompare, qemuImg, qemuInfo, withTempDir } from '../helpers/qemu.js';

const run = promisify(execFile);
const KiB = 1024;
const MiB = 1024 * KiB;
const GRAIN = 64 * KiB;

/** qemu-img map's ranges with a given property, merged. */
async function qemuRanges(
  path: string,
  pick: (m: { data: boolean; zero: boolean; present: boolean }) => boolean,
): Promise<Array<[number, number]>> {
  const map = JSON.parse(await qemuImg('map', '--output=json', '-f', 'vmdk', path)) as Array<{
    start: number;
    length: number;
    data: boolean;
    zero: boolean;
    present: boolean;
  }>;
  const out: Array<[number, number]> = [];
  for (const m of map) {
    if (!pick(m)) continue;
    const last = out[out.length - 1];
    if (last !== undefined && last[1] === m.start) last[1] = m.start + m.length;
    else out.push([m.start, m.start + m.length]);
  }
  return out;
}

function ranges(extents: readonly Extent[], kind: Extent['kind']): Array<[number, number]> {
  return extents.filter((e) => e.kind === kind).map((e) => [e.offset, e.offset + e.length]);
}

/** Asserts ferry and qemu-img both find the raw disk and the other image identical. */
async function assertSame(
  raw: string,
  other: string,
  fmt: string,
  allowFlat = false,
): Promise<void> {
  const q = await qemuCompare(raw, other, 'raw', fmt);
  assert.equal(q.identical, true, q.output);
  const ia = await openImage(raw);
  const ib = await openImage(other, { allowFlatExtents: allowFlat });
  try {
    const r = await compareImages(ia, ib);
    assert.equal(r.identical, true, JSON.stringify(r));
  } finally {
    await ia.close();
    await ib.close();
  }
}

/** A disk of a size that is not a whole number of grains, with data in its last, partial grain. */
const ODD_SIZE = 37 * GRAIN + 1536;
const ODD_REGIONS: readonly Region[] = [
  { offset: 3 * GRAIN + 100, length: 5000, fill: 'random' },
  { offset: 10 * GRAIN, length: 2 * GRAIN, fill: 'zero' },
  { offset: 20 * GRAIN - 512, length: 3 * GRAIN, fill: 0x5a },
  { offset: ODD_SIZE - 1024, length: 1024, fill: 'random' },
];

/** Data spread over several grain tables (each covers 32 MiB). */
const WIDE_SIZE = 100 * MiB;
const WIDE_REGIONS: readonly Region[] = [
  { offset: 0, length: 256 * KiB, fill: 'random' },
  { offset: 31 * MiB + 7 * GRAIN, length: 2 * MiB, fill: 'random' },
  { offset: 70 * MiB, length: MiB, fill: 0x01 },
  { offset: 99 * MiB, length: 64 * KiB, fill: 'zero' },
  { offset: WIDE_SIZE - 4096, length: 4096, fill: 'random' },
];

const DISKS = [
  { name: 'mixed', size: MIXED_SIZE, regions: MIXED_REGIONS },
  { name: 'odd', size: ODD_SIZE, regions: ODD_REGIONS },
  { name: 'wide', size: WIDE_SIZE, regions: WIDE_REGIONS },
];

describe('vmdk reader', () => {
  for (const sub of ['monolithicSparse', 'streamOptimized'] as const) {
    it(`reads ${sub} images written by qemu-img: same bytes and allocation as qemu-img map`, async () => {
      await withTempDir(async (dir) => {
        for (const d of DISKS) {
          const raw = join(dir, `${d.name}.raw`);
          const vmdk = join(dir, `${d.name}.vmdk`);
          await writeRawDisk(raw, d.size, d.regions);
          await qemuImg('convert', '-f', 'raw', '-O', 'vmdk', '-o', `subformat=${sub}`, raw, vmdk);
          await assertSame(raw, vmdk, 'vmdk');
          const img = await openImage(vmdk);
          try {
            assert.equal(img.format, 'vmdk');
            assert.equal(img.virtualSize, Math.ceil(d.size / 512) * 512);
            const info = await qemuInfo(vmdk, 'vmdk');
            assert.equal(info['virtual-size'], img.virtualSize);
            const det = img.details();
            assert.equal(det.createType, sub);
            assert.equal(det.compressed, sub === 'streamOptimized');
            assert.equal(det.grainSize, GRAIN);
            assert.equal(det.adapterType, 'ide');
            assert.equal(det.hwVersion, '4');
            const ext = await collectExtents(img.extents());
            assert.deepEqual(ranges(ext, 'data'), await qemuRanges(vmdk, (m) => m.data));
            // The last, partial grain reads back exactly.
            const tail = d.regions[d.regions.length - 1]!;
            const want = pseudoRandom(tail.length, `ferry:${tail.offset}`);
            assert.deepEqual(await img.read(tail.offset, tail.length), want);
          } finally {
            await img.close();
          }
        }
      });
    });
  }

  it('reads zeroed-grain entries (GTE 1) written through qemu-io as zero extents', async () => {
    await withTempDir(async (dir) => {
      const vmdk = join(dir, 'z.vmdk');
      const raw = join(dir, 'z.raw');
      await qemuImg('create', '-f', 'vmdk', '-o', 'zeroed_grain=on', vmdk, '4M');
      await run('qemu-io', [
        '-f',
        'vmdk',
        '-c',
        'write -P 0x33 0 128k',
        '-c',
        'write -z 128k 256k',
        '-c',
        'write -P 0x44 512k 64k',
        '-c',
        'write -z 512k 64k',
        '-c',
        'write -P 0x55 3m 4k',
        vmdk,
      ]);
      await qemuImg('convert', '-f', 'vmdk', '-O', 'raw', vmdk, raw);
      await assertSame(raw, vmdk, 'vmdk');
      const img = await openImage(vmdk);
      try {
        assert.equal(img.details().zeroedGrainEntries, true);
        const ext = await collectExtents(img.extents());
        assert.deepEqual(ranges(ext, 'zero'), await qemuRanges(vmdk, (m) => m.zero && m.present));
        assert.deepEqual(ranges(ext, 'data'), await qemuRanges(vmdk, (m) => m.data));
        assert.deepEqual(ranges(ext, 'zero'), [
          [128 * KiB, 384 * KiB],
          [512 * KiB, 576 * KiB],
        ]);
        assert.ok(
          (await img.read(100 * KiB, 500 * KiB)).subarray(28 * KiB).equals(Buffer.alloc(472 * KiB)),
        );
        const b = await img.read(3 * MiB, 8 * KiB);
        assert.ok(b.subarray(0, 4096).equals(Buffer.alloc(4096, 0x55)));
        assert.ok(b.subarray(4096).equals(Buffer.alloc(4096)));
      } finally {
        await img.close();
      }
    });
  });

  it('reads monolithicFlat (descriptor + flat extent) only with allowFlatExtents', async () => {
    await withTempDir(async (dir) => {
      const raw = join(dir, 'a.raw');
      const vmdk = join(dir, 'a.vmdk');
      await writeRawDisk(raw, ODD_SIZE, ODD_REGIONS);
      await qemuImg(
        'convert',
        '-f',
        'raw',
        '-O',
        'vmdk',
        '-o',
        'subformat=monolithicFlat',
        raw,
        vmdk,
      );
      await assert.rejects(openImage(vmdk), (e) => isFerryError(e, 'FERRY_VMDK_EXTENT_PATH'));
      await assertSame(raw, vmdk, 'vmdk', true);
      const img = await openImage(vmdk, { allowFlatExtents: true });
      try {
        const det = img.details();
        assert.equal(det.createType, 'monolithicFlat');
        assert.deepEqual(det.extents, [
          {
            access: 'RW',
            sectors: img.virtualSize / 512,
            type: 'FLAT',
            file: 'a-flat.vmdk',
            offset: 0,
          },
        ]);
        await assert.rejects(img.read(img.virtualSize - 10, 11), (e) =>
          isFerryError(e, 'FERRY_READ_OUT_OF_RANGE'),
        );
      } finally {
        await img.close();
      }
      // Over a source that cannot reach siblings, the flat extent is out of reach.
      const buf = await readFile(vmdk);
      await assert.rejects(
        vmdkReader.open(new BufferSource(buf, 'a.vmdk'), { allowFlatExtents: true }),
        (e) => isFerryError(e, 'FERRY_NOT_CAPABLE'),
      );
    });
  });

  it('refuses twoGbMaxExtent* disks, their extents, and differencing disks made by qemu-img', async () => {
    await withTempDir(async (dir) => {
      for (const sub of ['twoGbMaxExtentSparse', 'twoGbMaxExtentFlat']) {
        const p = join(dir, `${sub}.vmdk`);
        await qemuImg('create', '-f', 'vmdk', '-o', `subformat=${sub}`, p, '3G');
        await assert.rejects(openImage(p, { allowFlatExtents: true }), (e) =>
          isFerryError(e, 'FERRY_VMDK_UNSUPPORTED_TYPE'),
        );
      }
      // An extent of a split sparse disk has an empty embedded descriptor.
      await assert.rejects(openImage(join(dir, 'twoGbMaxExtentSparse-s001.vmdk')), (e) =>
        isFerryError(e, 'FERRY_VMDK_BAD_DESCRIPTOR'),
      );
      const base = join(dir, 'base.vmdk');
      const child = join(dir, 'child.vmdk');
      await qemuImg('create', '-f', 'vmdk', base, '1M');
      await qemuImg('create', '-f', 'vmdk', '-b', base, '-F', 'vmdk', child);
      await assert.rejects(openImage(child), (e) => isFerryError(e, 'FERRY_VMDK_DIFFERENCING'));
    });
  });
});

describe('vmdk writer', () => {
  it('writes streamOptimized that qemu-img checks clean and compares identical', async () => {
    await withTempDir(async (dir) => {
      for (const d of DISKS) {
        const raw = join(dir, `${d.name}.raw`);
        const vmdk = join(dir, `${d.name}.vmdk`);
        await writeRawDisk(raw, d.size, d.regions);
        const r = await convertImage(raw, vmdk, { to: 'vmdk' });
        assert.equal(r.virtualSize, d.size);
        const check = await qemuCheck(vmdk, 'vmdk');
        assert.ok(check.ok, check.output);
        await assertSame(raw, vmdk, 'vmdk');
        const info = await qemuInfo(vmdk, 'vmdk');
        assert.equal(info['virtual-size'], Math.ceil(d.size / 512) * 512);
        const data = (info['format-specific'] as { data: Record<string, unknown> }).data;
        assert.equal(data['create-type'], 'streamOptimized');
        assert.equal(data['parent-cid'], 0xffffffff);
        const extents = data.extents as Array<Record<string, unknown>>;
        assert.equal(extents.length, 1);
        assert.equal(extents[0]!.compressed, true);
        assert.equal(extents[0]!['cluster-size'], GRAIN);
        // Zero grains are left out: ferry's map of the result has holes where the raw disk has none.
        const img = await openImage(vmdk);
        try {
          assert.equal(img.details().gdAtEnd, true);
          const ext = await collectExtents(img.extents());
          assert.deepEqual(ranges(ext, 'data'), await qemuRanges(vmdk, (m) => m.data));
          for (const reg of d.regions) {
            if (reg.fill !== 'zero' || reg.length < 2 * GRAIN) continue;
            const inner = Math.ceil(reg.offset / GRAIN) * GRAIN;
            assert.ok(
              ext.some(
                (e) =>
                  e.kind === 'hole' && e.offset <= inner && e.offset + e.length >= inner + GRAIN,
              ),
              `zero run at ${reg.offset} is a hole`,
            );
          }
        } finally {
          await img.close();
        }
      }
    });
  });

  it('lays out header, descriptor, markers, footer and end-of-stream as the stream format says', async () => {
    await withTempDir(async (dir) => {
      const raw = join(dir, 'a.raw');
      const vmdk = join(dir, 'a.vmdk');
      await writeRawDisk(raw, MIXED_SIZE, MIXED_REGIONS);
      await convertImage(raw, vmdk, { to: 'vmdk' });
      const f = await readFile(vmdk);
      assert.equal(f.length % 512, 0);
      assert.equal(f.toString('latin1', 0, 4), 'KDMV');
      assert.equal(f.readUInt32LE(4), 3); // version
      assert.equal(f.readUInt32LE(8), 0x30001); // newline test, compressed, markers
      const capacity = Math.ceil(MIXED_SIZE / 512);
      assert.equal(f.readBigUInt64LE(12), BigInt(capacity));
      assert.equal(f.readBigUInt64LE(20), 128n); // grain: 128 sectors
      assert.equal(f.readBigUInt64LE(28), 1n); // descriptor at sector 1
      assert.equal(f.readUInt32LE(44), 512); // GTEs per GT
      assert.equal(f.readBigUInt64LE(56), 0xffffffffffffffffn); // GD_AT_END
      assert.equal(f.toString('latin1', 73, 77), '\n \r\n');
      assert.equal(f.readUInt16LE(77), 1); // deflate
      const desc = f.toString('latin1', 512, f.indexOf(0, 512));
      assert.match(desc, /^# Disk DescriptorFile\n/);
      assert.match(desc, /\ncreateType="streamOptimized"\n/);
      assert.match(desc, /\nparentCID=ffffffff\n/);
      assert.match(desc, /\nCID=[0-9a-f]{8}\n/);
      assert.match(desc, new RegExp(`\\nRW ${capacity} SPARSE "a.vmdk"\\n`));
      assert.match(desc, /\nddb.adapterType = "lsilogic"\n/);
      assert.match(desc, /\nddb.virtualHWVersion = "4"\n/);
      assert.match(desc, /\nddb.geometry.heads = "255"\n/);
      // First grain marker at sector 128: LBA 0, then a zlib stream (RFC 1950 header 0x78).
      assert.equal(f.readBigUInt64LE(65536), 0n);
      assert.ok(f.readUInt32LE(65536 + 8) > 0);
      assert.equal(f[65536 + 12], 0x78);
      // Tail: footer marker, footer (header copy with the real GD offset), EOS marker.
      const end = f.length;
      assert.equal(f.readUInt32LE(end - 1536 + 8), 0);
      assert.equal(f.readUInt32LE(end - 1536 + 12), 3);
      const footer = f.subarray(end - 1024, end - 512);
      const header = f.subarray(0, 512);
      const gd = Number(footer.readBigUInt64LE(56));
      assert.ok(gd > 128 && gd * 512 < end - 1536);
      assert.ok(footer.subarray(0, 56).equals(header.subarray(0, 56)));
      assert.ok(footer.subarray(64).equals(header.subarray(64)));
      assert.ok(f.subarray(end - 512).equals(Buffer.alloc(512)));
      // GD marker right before the directory; each GD entry points right after a GT marker.
      assert.equal(f.readUInt32LE(gd * 512 - 512 + 12), 2);
      const entries = Math.ceil(capacity / (128 * 512));
      assert.equal(f.readBigUInt64LE(gd * 512 - 512), BigInt(Math.ceil((entries * 4) / 512)));
      for (let i = 0; i < entries; i++) {
        const gt = f.readUInt32LE(gd * 512 + i * 4);
        if (gt === 0) continue;
        assert.equal(f.readUInt32LE(gt * 512 - 512 + 12), 1);
        assert.equal(f.readBigUInt64LE(gt * 512 - 512), 4n);
      }
    });
  });

  it('round-trips vmdk -> raw, for its own and qemu-img streams, identical per qemu-img', async () => {
    await withTempDir(async (dir) => {
      const raw = join(dir, 'a.raw');
      await writeRawDisk(raw, ODD_SIZE, ODD_REGIONS);
      const ours = join(dir, 'ours.vmdk');
      const theirs = join(dir, 'theirs.vmdk');
      const sparse = join(dir, 'sparse.vmdk');
      await convertImage(raw, ours, { to: 'vmdk' });
      await qemuImg(
        'convert',
        '-f',
        'raw',
        '-O',
        'vmdk',
        '-o',
        'subformat=streamOptimized',
        raw,
        theirs,
      );
      await qemuImg('convert', '-f', 'raw', '-O', 'vmdk', raw, sparse);
      for (const src of [ours, theirs, sparse]) {
        const back = `${src}.raw`;
        await convertImage(src, back, { to: 'raw' });
        assert.equal((await qemuCompare(raw, back, 'raw', 'raw')).identical, true, src);
      }
      // vmdk -> vmdk through ferry stays identical too.
      const again = join(dir, 'again.vmdk');
      await convertImage(theirs, again, { to: 'vmdk' });
      assert.ok((await qemuCheck(again, 'vmdk')).ok);
      assert.equal((await qemuCompare(raw, again, 'raw', 'vmdk')).identical, true);
    });
  });

  it('writes an all-zero disk as a valid stream with no grains', async () => {
    await withTempDir(async (dir) => {
      const raw = join(dir, 'z.raw');
      const vmdk = join(dir, 'z.vmdk');
      await writeRawDisk(raw, 3 * MiB + 512, [{ offset: MiB, length: MiB, fill: 'zero' }]);
      await convertImage(raw, vmdk, { to: 'vmdk' });
      assert.ok((await qemuCheck(vmdk, 'vmdk')).ok);
      assert.equal((await qemuCompare(raw, vmdk, 'raw', 'vmdk')).identical, true);
      const img = await openImage(vmdk);
      try {
        assert.deepEqual(await collectExtents(img.extents()), [
          { offset: 0, length: 3 * MiB + 512, kind: 'hole' },
        ]);
      } finally {
        await img.close();
      }
    });
  });

  it('VmdkStreamWriter writes at a base offset and takes unaligned, sparse writes', async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'box.bin');
      const base = 3 * 512 + 1000;
      const size = 5 * MiB + 700;
      const out = await OutputFile.create(path);
      const prefix = Buffer.alloc(base, 0xee);
      await out.write(prefix, 0);
      const w = new VmdkStreamWriter(out, base, size, { extentName: 'disk1.vmdk' });
      const expected = Buffer.alloc(Math.ceil(size / 512) * 512);
      const pieces: Array<[number, number]> = [
        [0, 100],
        [100, 70_000],
        [GRAIN * 3 + 5, 10],
        [GRAIN * 3 + 15, 200_000],
        [2 * MiB + 1, 513],
        [size - 3000, 3000],
      ];
      for (const [off, len] of pieces) {
        const b = pseudoRandom(len, `piece:${off}`);
        b.copy(expected, off);
        await w.write(off, b);
      }
      await assert.rejects(w.write(0, Buffer.alloc(1)), (e) => isFerryError(e, 'FERRY_INTERNAL'));
      const total = await w.finish();
      await out.commit();
      const file = await FileSource.open(path);
      try {
        assert.equal(file.size, base + total);
        assert.ok((await file.read(0, base)).equals(prefix));
        const slice = new SliceSource(file, base, total, 'disk1.vmdk');
        const img = await vmdkReader.open(slice, {});
        try {
          assert.equal(img.virtualSize, expected.length);
          assert.deepEqual(
            (img.details().extents as Array<{ file: string }>)[0]?.file,
            'disk1.vmdk',
          );
          assert.ok((await img.read(0, expected.length)).equals(expected));
        } finally {
          await img.close();
        }
        // The embedded stream, cut out, is a VMDK qemu-img accepts.
        const cut = join(dir, 'disk1.vmdk');
        await writeFile(cut, await file.read(base, total));
        assert.ok((await qemuCheck(cut, 'vmdk')).ok);
        const rawCopy = join(dir, 'expected.raw');
        await writeFile(rawCopy, expected);
        assert.equal((await qemuCompare(rawCopy, cut, 'raw', 'vmdk')).identical, true);
      } finally {
        await file.close();
      }
    });
  });

  it('reads its whole output back with many grains inflated in parallel', async () => {
    await withTempDir(async (dir) => {
      const raw = join(dir, 'a.raw');
      const vmdk = join(dir, 'a.vmdk');
      await writeRawDisk(raw, WIDE_SIZE, WIDE_REGIONS);
      await convertImage(raw, vmdk, { to: 'vmdk' });
      const img = await openImage(vmdk);
      const fh = await open(raw);
      try {
        // One big unaligned read across grain tables.
        const off = 31 * MiB + 3;
        const len = 3 * MiB;
        const want = Buffer.alloc(len);
        await fh.read(want, 0, len, off);
        assert.ok((await img.read(off, len)).equals(want));
      } finally {
        await fh.close();
        await img.close();
      }
    });
  });
});
