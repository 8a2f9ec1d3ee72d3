import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { open, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { F } from '../../src/disk/formats/vhd/constants.js';
import { sealChecksum, specGeometry } from '../../src/disk/formats/vhd/footer.js';
import { createVhdWriter, vhdWriter } from '../../src/disk/formats/vhd/index.js';
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
import { blockPattern, buildVhd } from '../corpus/vhd.js';
import { MIXED_REGIONS, MIXED_SIZE, pseudoRandom, writeRawDisk } from '../helpers/disks.js';
import { qemuCheck, qemuCompare, qemuImg, qemuInfo, withTempDir } from '../helpers/qemu.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const run = promisify(execFile);

/** libvhdi (Debian python3-libvhdi): an independent reader that follows the spec, sector bitmaps included. */
const PYVHDI = `
import sys, hashlib, pyvhdi
f = pyvhdi.file()
f.open(sys.argv[1])
size = f.get_media_size()
h = hashlib.sha256()
done = 0
while done < size:
    b = f.read_buffer(min(1 << 20, size - done))
    if not b: raise SystemExit('short read')
    h.update(b)
    done += len(b)
print(size, h.hexdigest())
`;
const havePyvhdi =
  spawnSync('/usr/bin/python3', ['-c', 'import pyvhdi'], { stdio: 'ignore' }).status === 0;

async function qemuIo(path: string, ...commands: string[]): Promise<string> {
  const args = ['-f', 'vpc', ...commands.flatMap((c) => ['-c', c]), path];
  const { stdout, stderr } = await run('qemu-io', args);
  return stdout + stderr;
}

interface MapEntry {
  start: number;
  length: number;
  data: boolean;
  offset?: number;
}

async function qemuMap(path: string): Promise<MapEntry[]> {
  return JSON.parse(await qemuImg('map', '--output=json', '-f', 'vpc', path)) as MapEntry[];
}

/** Merged [start, end) ranges of the entries that are data. */
function dataRanges(entries: ReadonlyArray<{ start: number; length: number; data: boolean }>) {
  const out: Array<[number, number]> = [];
  for (const e of entries) {
    if (!e.data) continue;
    const last = out[out.length - 1];
    if (last !== undefined && last[1] === e.start) last[1] += e.length;
    else out.push([e.start, e.start + e.length]);
  }
  return out;
}

function asMap(extents: readonly Extent[]) {
  return extents.map((e) => ({ start: e.offset, length: e.length, data: e.kind === 'data' }));
}

async function withImage<T>(path: string, fn: (img: DiskImage) => Promise<T>): Promise<T> {
  const img = await openImage(path);
  try {
    return await fn(img);
  } finally {
    await img.close();
  }
}

/** Ferry's full read of an image equals qemu-img's conversion of it to raw. */
async function assertReadsLikeQemu(dir: string, path: string, img: DiskImage): Promise<void> {
  const raw = join(dir, 'qemu-view.raw');
  await qemuImg('convert', '-f', 'vpc', '-O', 'raw', path, raw);
  const expected = await readFile(raw);
  assert.equal(img.virtualSize, expected.length);
  assert.ok(expected.equals(await img.read(0, img.virtualSize)));
}

/** Rewrites the creator (and optionally geometry) of every footer copy, resealing checksums. */
async function setCreator(
  path: string,
  app: string,
  geometry?: { cylinders: number; heads: number; sectorsPerTrack: number },
): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    const size = (await fh.stat()).size;
    for (const at of [0, size - 512]) {
      const buf = Buffer.alloc(512);
      await fh.read(buf, 0, 512, at);
      if (buf.toString('latin1', 0, 8) !== 'conectix') continue;
      buf.write(app, F.creatorApp, 4, 'latin1');
      if (geometry !== undefined) {
        buf.writeUInt16BE(geometry.cylinders, F.cylinders);
        buf.writeUInt8(geometry.heads, F.heads);
        buf.writeUInt8(geometry.sectorsPerTrack, F.sectorsPerTrack);
      }
      sealChecksum(buf, F.checksum);
      await fh.write(buf, 0, 512, at);
    }
  } finally {
    await fh.close();
  }
}

describe('vhd reader: images made by qemu-img', () => {
  const variants: Array<[string, string[], 'fixed' | 'dynamic']> = [
    ['dynamic (default: creator "qemu", size rounded up to CHS)', [], 'dynamic'],
    ['dynamic, force_size (creator "qem2", exact size)', ['-o', 'force_size=on'], 'dynamic'],
    ['subformat=fixed', ['-o', 'subformat=fixed'], 'fixed'],
    ['subformat=fixed, force_size', ['-o', 'subformat=fixed,force_size=on'], 'fixed'],
  ];
  for (const [name, opts, subformat] of variants) {
    it(`reads ${name} identically, with qemu-img's virtual size`, async () => {
      await withTempDir(async (dir) => {
        const raw = join(dir, 'src.raw');
        const vhd = join(dir, 'disk.vhd');
        await writeRawDisk(raw, MIXED_SIZE, MIXED_REGIONS);
        await qemuImg('convert', '-f', 'raw', '-O', 'vpc', ...opts, raw, vhd);
        const info = await qemuInfo(vhd, 'vpc');
        await withImage(vhd, async (img) => {
          assert.equal(img.format, 'vhd');
          assert.equal(img.virtualSize, info['virtual-size']);
          assert.ok(img.virtualSize >= MIXED_SIZE);
          assert.equal(img.details().subformat, subformat);
          assert.deepEqual(img.warnings, []);
          await withImage(raw, async (src) => {
            assert.equal((await compareImages(src, img)).identical, true);
          });
          await assertReadsLikeQemu(dir, vhd, img);
          const extents = await collectExtents(img.extents());
          assert.equal(
            extents.reduce((s, e) => s + e.length, 0),
            img.virtualSize,
          );
          if (subformat === 'dynamic') {
            // The allocation map is qemu's, block for block.
            assert.deepEqual(dataRanges(asMap(extents)), dataRanges(await qemuMap(vhd)));
            assert.ok(extents.some((e) => e.kind === 'hole'));
          }
        });
        assert.equal((await qemuCompare(raw, vhd, 'raw', 'vpc')).identical, true);
      });
    });
  }

  it('reads disks whose sizes are not a multiple of the block size', async () => {
    await withTempDir(async (dir) => {
      for (const size of [512, MiB + 512, 2 * MiB - 512, 2 * MiB + 4096 + 512, 5 * MiB + 1536]) {
        const raw = join(dir, `${size}.raw`);
        await writeFile(raw, pseudoRandom(size, `size:${size}`));
        for (const opts of [[], ['-o', 'force_size=on']]) {
          const vhd = join(dir, `${size}-${opts.length}.vhd`);
          await qemuImg('convert', '-f', 'raw', '-O', 'vpc', ...opts, raw, vhd);
          const info = await qemuInfo(vhd, 'vpc');
          await withImage(vhd, async (img) => {
            assert.equal(img.virtualSize, info['virtual-size'], `size ${size} ${opts.join(' ')}`);
            assert.ok((await img.read(0, size)).equals(await readFile(raw)));
            await assertReadsLikeQemu(dir, vhd, img);
          });
          assert.equal((await qemuCompare(raw, vhd, 'raw', 'vpc')).identical, true);
        }
      }
    });
  });

  it('maps a 40 GiB dynamic disk whose BAT spans several pages', async () => {
    await withTempDir(async (dir) => {
      const vhd = join(dir, 'big.vhd');
      await qemuImg('create', '-f', 'vpc', '-o', 'force_size=on', vhd, '40G');
      await qemuIo(vhd, 'write -P 0x33 0 4k', 'write -P 0x5a 39G 1M', 'write -P 0x77 40959M 1M');
      await withImage(vhd, async (img) => {
        assert.equal(img.virtualSize, 40 * GiB);
        const data = (await collectExtents(img.extents())).filter((e) => e.kind === 'data');
        assert.deepEqual(
          data.map((e) => [e.offset, e.length]),
          [
            [0, 2 * MiB],
            [39 * GiB, 2 * MiB],
            [40 * GiB - 2 * MiB, 2 * MiB],
          ],
        );
        assert.ok((await img.read(39 * GiB, MiB)).equals(Buffer.alloc(MiB, 0x5a)));
        assert.ok((await img.read(40 * GiB - MiB, MiB)).equals(Buffer.alloc(MiB, 0x77)));
        const head = await img.read(0, 8192);
        assert.ok(head.subarray(0, 4096).equals(Buffer.alloc(4096, 0x33)));
        assert.ok(head.subarray(4096).equals(Buffer.alloc(4096)));
        // A read across unstored and stored blocks.
        const across = await img.read(39 * GiB - MiB, 2 * MiB);
        assert.ok(across.subarray(0, MiB).equals(Buffer.alloc(MiB)));
        assert.ok(across.subarray(MiB).equals(Buffer.alloc(MiB, 0x5a)));
        assert.deepEqual(dataRanges(asMap(data)), dataRanges(await qemuMap(vhd)));
      });
    });
  });

  it('sizes by CHS for creators "vpc "/"qemu" and by current_size otherwise, as qemu does', async () => {
    await withTempDir(async (dir) => {
      const raw = join(dir, 'src.raw');
      await writeRawDisk(raw, MIXED_SIZE, MIXED_REGIONS);
      const base = join(dir, 'base.vhd');
      await qemuImg('convert', '-f', 'raw', '-O', 'vpc', '-o', 'force_size=on', raw, base);
      const chs = specGeometry(MIXED_SIZE / 512);
      const chsSize = chs.cylinders * chs.heads * chs.sectorsPerTrack * 512;
      assert.ok(chsSize < MIXED_SIZE);
      const cases: Array<[string, string, typeof chs | undefined, number, boolean]> = [
        ['vpc with a smaller geometry', 'vpc ', chs, chsSize, true],
        ['qemu with a smaller geometry', 'qemu', chs, chsSize, true],
        ['vpc with the maximum geometry', 'vpc ', undefined, MIXED_SIZE, false],
        ['win with a smaller geometry', 'win ', chs, MIXED_SIZE, false],
        ['tap\\0 with a smaller geometry', 'tap\0', chs, MIXED_SIZE, false],
      ];
      for (const c of cases) {
        const [name, app, geometry, expected, warns] = c;
        const vhd = join(dir, `creator-${cases.indexOf(c)}.vhd`);
        await writeFile(vhd, await readFile(base));
        await setCreator(vhd, app, geometry);
        const info = await qemuInfo(vhd, 'vpc');
        await withImage(vhd, async (img) => {
          assert.equal(img.virtualSize, expected, name);
          assert.equal(img.virtualSize, info['virtual-size'], name);
          assert.equal(
            img.warnings.some((w) => w.code === 'VHD_SIZE_AMBIGUOUS'),
            warns,
            name,
          );
          const d = img.details();
          assert.equal(d.currentSize, MIXED_SIZE);
          assert.equal(d.sizeFrom, expected === MIXED_SIZE ? 'current-size' : 'chs');
          await assertReadsLikeQemu(dir, vhd, img);
        });
      }
      // An unknown creator (Azure exports say "wa\0\0"): qemu 10 and Hyper-V use
      // current_size; qemu-img before 10.0 used CHS. ferry follows current_size and warns.
      const azure = join(dir, 'azure.vhd');
      await writeFile(azure, await readFile(base));
      await setCreator(azure, 'wa\0\0', chs);
      const qemuSize = (await qemuInfo(azure, 'vpc'))['virtual-size'];
      assert.ok(qemuSize === chsSize || qemuSize === MIXED_SIZE);
      await withImage(azure, async (img) => {
        assert.equal(img.virtualSize, MIXED_SIZE);
        assert.ok(img.warnings.some((w) => w.code === 'VHD_SIZE_AMBIGUOUS'));
      });
    });
  });

  it('detects a fixed VHD by its trailing footer, which qemu-img never probes', async () => {
    await withTempDir(async (dir) => {
      const vhd = join(dir, 'fixed.vhd');
      await qemuImg('create', '-f', 'vpc', '-o', 'subformat=fixed,force_size=on', vhd, '3M');
      assert.equal((await qemuInfo(vhd)).format, 'raw');
      await withImage(vhd, async (img) => {
        assert.equal(img.format, 'vhd');
        assert.equal(img.virtualSize, 3 * MiB);
        const d = img.details();
        assert.equal(d.subformat, 'fixed');
        assert.equal(d.creator, 'qem2');
        assert.equal(d.blockSize, null);
        assert.match(
          String(d.uuid),
          /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
        );
        assert.deepEqual(d.geometry, { cylinders: 65535, heads: 16, sectorsPerTrack: 255 });
        // A fresh fixed disk is a sparse file: holes, except the first 4 KiB
        // qemu allocates to probe the file system's alignment.
        const extents = await collectExtents(img.extents());
        const data = extents.filter((e) => e.kind === 'data');
        assert.ok(data.reduce((s, e) => s + e.length, 0) <= 4096, JSON.stringify(extents));
        assert.ok(extents.some((e) => e.kind === 'hole'));
      });
    });
  });

  it('reads builder images: 4 KiB blocks, blocks stored out of order', async () => {
    for (const spec of [
      { virtualSize: 256 * 1024, blockSize: 4096, data: [63, 0, 17, 18] },
      { virtualSize: 7 * MiB + 512, blockSize: 2 * MiB, data: [3, 1] },
    ]) {
      const { image } = buildVhd(spec);
      const img = await openImageSource(new BufferSource(image, 'built.vhd'));
      const expected = Buffer.alloc(spec.virtualSize);
      for (const b of spec.data) {
        const len = Math.min(spec.blockSize, spec.virtualSize - b * spec.blockSize);
        blockPattern(b, spec.blockSize).copy(expected, b * spec.blockSize, 0, len);
      }
      assert.equal(img.virtualSize, spec.virtualSize);
      assert.ok((await img.read(0, spec.virtualSize)).equals(expected));
      const stored = (await collectExtents(img.extents())).filter((e) => e.kind === 'data');
      const blocks = stored.flatMap((e) => {
        const out: number[] = [];
        for (let o = e.offset; o < e.offset + e.length; o += spec.blockSize)
          out.push(o / spec.blockSize);
        return out;
      });
      assert.deepEqual(
        blocks,
        [...spec.data].sort((a, b) => a - b),
      );
      await img.close();
    }
  });
});

describe('vhd writer', () => {
  it('writes a dynamic VHD identical per qemu-img compare, leaving zero blocks unstored', async () => {
    await withTempDir(async (dir) => {
      const raw = join(dir, 'src.raw');
      const vhd = join(dir, 'out.vhd');
      await writeRawDisk(raw, MIXED_SIZE, MIXED_REGIONS);
      const result = await convertImage(raw, vhd, { to: 'vhd' });
      assert.equal(result.virtualSize, MIXED_SIZE);
      assert.equal(result.fileSize, (await stat(vhd)).size);
      const info = await qemuInfo(vhd);
      assert.equal(info.format, 'vpc');
      assert.equal(info['virtual-size'], MIXED_SIZE);
      assert.equal((await qemuCompare(raw, vhd, 'raw', 'vpc')).identical, true);
      // qemu-img has no consistency check for vpc; where it gains one, it must pass.
      const check = await qemuCheck(vhd, 'vpc');
      assert.ok(check.ok || /does not support checks/.test(check.output), check.output);
      // Blocks 0, 1, 2 and 4 hold data; block 3 holds only zeros and is not stored.
      const map = await qemuMap(vhd);
      assert.deepEqual(dataRanges(map), [
        [0, 6 * MiB],
        [8 * MiB, MIXED_SIZE],
      ]);
      for (const e of map) if (e.data) assert.equal((e.offset ?? 1) % 4096, 0);
      await withImage(vhd, async (img) => {
        assert.equal(img.details().storedBlocks, 4);
        assert.equal(img.details().creator, 'qem2');
        assert.deepEqual(img.warnings, []);
        await withImage(raw, async (src) => {
          assert.equal((await compareImages(src, img)).identical, true);
        });
      });
      // The footer copies are identical (AWS checks this).
      const bytes = await readFile(vhd);
      assert.ok(bytes.subarray(0, 512).equals(bytes.subarray(bytes.length - 512)));
    });
  });

  it('writes a fixed VHD rounded up to whole MiB, identical per qemu-img compare', async () => {
    await withTempDir(async (dir) => {
      const raw = join(dir, 'src.raw');
      const vhd = join(dir, 'out.vhd');
      await writeRawDisk(raw, MIXED_SIZE, MIXED_REGIONS);
      const result = await convertImage(raw, vhd, { to: 'vhd', vhdSubformat: 'fixed' });
      const st = await stat(vhd);
      assert.equal(result.fileSize, st.size);
      assert.equal(st.size, 10 * MiB + 512);
      assert.equal((st.size - 512) % MiB, 0);
      assert.ok(st.blocks * 512 < st.size, 'the zero runs stay holes');
      assert.equal((await qemuInfo(vhd, 'vpc'))['virtual-size'], 10 * MiB);
      const q = await qemuCompare(raw, vhd, 'raw', 'vpc');
      assert.equal(q.identical, true);
      await withImage(vhd, async (img) => {
        assert.equal(img.details().subformat, 'fixed');
        assert.equal(img.virtualSize, 10 * MiB);
        await withImage(raw, async (src) => {
          assert.equal((await compareImages(src, img)).identical, true);
        });
      });
    });
  });

  for (const subformat of ['dynamic', 'fixed'] as const) {
    it(`round-trips raw -> ${subformat} vhd -> raw`, async () => {
      await withTempDir(async (dir) => {
        const raw = join(dir, 'src.raw');
        const vhd = join(dir, 'mid.vhd');
        const back = join(dir, 'back.raw');
        await writeRawDisk(raw, MIXED_SIZE, MIXED_REGIONS);
        await convertImage(raw, vhd, { to: 'vhd', vhdSubformat: subformat });
        await convertImage(vhd, back, { to: 'raw' });
        assert.equal((await qemuCompare(raw, back, 'raw', 'raw')).identical, true);
        const a = await readFile(raw);
        const b = await readFile(back);
        assert.ok(b.subarray(0, a.length).equals(a));
        assert.ok(b.subarray(a.length).equals(Buffer.alloc(b.length - a.length)));
      });
    });
  }

  it('rounds sizes that are not whole sectors up, as qemu-img compare accepts', async () => {
    await withTempDir(async (dir) => {
      const raw = join(dir, 'odd.raw');
      const size = 3 * MiB + 100;
      await writeFile(raw, pseudoRandom(size, 'odd'));
      for (const [subformat, expected] of [
        ['dynamic', 3 * MiB + 512],
        ['fixed', 4 * MiB],
      ] as const) {
        const vhd = join(dir, `${subformat}.vhd`);
        const r = await convertImage(raw, vhd, { to: 'vhd', vhdSubformat: subformat });
        assert.equal(r.virtualSize, size);
        assert.equal((await qemuInfo(vhd, 'vpc'))['virtual-size'], expected);
        assert.equal((await qemuCompare(raw, vhd, 'raw', 'vpc')).identical, true);
        await withImage(vhd, async (img) => assert.equal(img.virtualSize, expected));
        // The writer says how large the disk it wrote is.
        const w = await vhdWriter.create(join(dir, `w-${subformat}.vhd`), {
          virtualSize: size,
          vhdSubformat: subformat,
        });
        await w.write(0, pseudoRandom(size, 'odd'));
        assert.equal((await w.finish()).virtualSize, expected);
      }
    });
  });

  it('writes disks whose data ends inside a block, and empty disks', async () => {
    await withTempDir(async (dir) => {
      for (const size of [0, 512, 2 * MiB, 2 * MiB + 512, 6 * MiB - 4096]) {
        const raw = join(dir, `${size}.raw`);
        await writeFile(raw, pseudoRandom(size, `w:${size}`));
        for (const subformat of ['dynamic', 'fixed'] as const) {
          const vhd = join(dir, `${size}-${subformat}.vhd`);
          await convertImage(raw, vhd, { to: 'vhd', vhdSubformat: subformat });
          const info = await qemuInfo(vhd, 'vpc');
          await withImage(vhd, async (img) => {
            assert.equal(img.virtualSize, info['virtual-size']);
            await assertReadsLikeQemu(dir, vhd, img);
          });
          assert.equal((await qemuCompare(raw, vhd, 'raw', 'vpc')).identical, true);
        }
      }
    });
  });

  it('flushes in the background as it writes, with the same result', async () => {
    await withTempDir(async (dir) => {
      const raw = join(dir, 'src.raw');
      await writeRawDisk(raw, MIXED_SIZE, MIXED_REGIONS);
      for (const vhdSubformat of ['dynamic', 'fixed'] as const) {
        const vhd = join(dir, `${vhdSubformat}.vhd`);
        await withImage(raw, async (src) => {
          const w = await createVhdWriter(
            vhd,
            { virtualSize: src.virtualSize, vhdSubformat },
            64 * 1024,
          );
          await copyImage(src, w);
        });
        assert.equal((await qemuCompare(raw, vhd, 'raw', 'vpc')).identical, true);
      }
    });
  });

  it('writes each stored block as one aligned run (bitmap page, then data), direct or not', async () => {
    await withTempDir(async (dir) => {
      const raw = join(dir, 'src.raw');
      await writeRawDisk(raw, MIXED_SIZE, MIXED_REGIONS);
      for (const directWrites of [true, false]) {
        const vhd = join(dir, `${directWrites}.vhd`);
        await withImage(raw, async (src) => {
          await copyImage(
            src,
            await createVhdWriter(vhd, { virtualSize: src.virtualSize, directWrites }),
          );
        });
        assert.equal((await qemuCompare(raw, vhd, 'raw', 'vpc')).identical, true);
        const bytes = await readFile(vhd);
        const tableOffset = Number(bytes.readBigUInt64BE(512 + 16));
        const entries = bytes.readUInt32BE(512 + 28);
        const batEnd = tableOffset + entries * 4;
        let stored = 0;
        for (let i = 0; i < entries; i++) {
          const sector = bytes.readUInt32BE(tableOffset + i * 4);
          if (sector === 0xffffffff) continue;
          stored++;
          const data = sector * 512 + 512;
          // The data starts a page; the page before it is zeros then the bitmap, after the BAT.
          assert.equal(data % 4096, 0, `block ${i}`);
          assert.ok(data - 4096 >= batEnd, `block ${i} page overlaps the BAT`);
          assert.ok(bytes.subarray(data - 4096, data - 512).equals(Buffer.alloc(3584)));
          assert.ok(bytes.subarray(data - 512, data).equals(Buffer.alloc(512, 0xff)));
        }
        assert.equal(stored, 4);
      }
    });
  });

  it('refuses disks over 2040 GiB and removes its temporary file on abort', async () => {
    await withTempDir(async (dir) => {
      await assert.rejects(
        vhdWriter.create(join(dir, 'huge.vhd'), { virtualSize: 2041 * GiB }),
        (e) => isFerryError(e, 'FERRY_IMAGE_TOO_LARGE'),
      );
      const w = await vhdWriter.create(join(dir, 'x.vhd'), { virtualSize: 8 * MiB });
      await w.write(0, Buffer.alloc(2 * MiB, 1));
      await w.abort();
      assert.deepEqual(await readdir(dir), []);
    });
  });
});

describe('vhd writer checked by libvhdi', {
  skip: havePyvhdi ? false : 'python3-libvhdi (an independent VHD reader) not installed',
}, () => {
  for (const subformat of ['dynamic', 'fixed'] as const) {
    it(`libvhdi reads a ferry ${subformat} VHD as the source disk`, async () => {
      await withTempDir(async (dir) => {
        const raw = join(dir, 'src.raw');
        const vhd = join(dir, 'out.vhd');
        await writeRawDisk(raw, MIXED_SIZE, MIXED_REGIONS);
        await convertImage(raw, vhd, { to: 'vhd', vhdSubformat: subformat });
        const { stdout } = await run('/usr/bin/python3', ['-c', PYVHDI, vhd]);
        const [size, digest] = stdout.trim().split(' ');
        const expected = Buffer.alloc(Number(size));
        (await readFile(raw)).copy(expected);
        assert.equal(Number(size), subformat === 'fixed' ? 10 * MiB : MIXED_SIZE);
        assert.equal(digest, createHash('sha256').update(expected).digest('hex'));
      });
    });
  }
});
