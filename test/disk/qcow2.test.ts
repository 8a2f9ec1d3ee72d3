import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { open, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { createQcow2Writer } from '../../src/disk/formats/qcow2/qcow2-writer.js';
import {
  collectExtents,
  compareImages,
  convertImage,
  copyImage,
  type DiskImage,
  type Extent,
  openImage,
} from '../../src/disk/index.js';
import { isFerryError } from '../../src/errors/index.js';
import { buildQcow2 } from '../corpus/qcow2.js';
import { MIXED_REGIONS, MIXED_SIZE, writeRawDisk } from '../helpers/disks.js';
import { qemuCheck, qemuCompare, qemuImg, qemuInfo, withTempDir } from '../helpers/qemu.js';

const KiB = 1024;
const MiB = 1024 * 1024;

/** Runs qemu-io commands on an image (qemu-io ships with qemu-utils). */
async function qemuIo(path: string, commands: readonly string[]): Promise<void> {
  await promisify(execFile)('qemu-io', [
    '-f',
    'qcow2',
    ...commands.flatMap((c) => ['-c', c]),
    path,
  ]);
}

/** Allocation map per qemu-img map, merged by kind (unallocated = hole, zero flag = zero). */
async function qemuMap(path: string): Promise<Extent[]> {
  const raw = JSON.parse(await qemuImg('map', '--output=json', '-f', 'qcow2', path)) as {
    start: number;
    length: number;
    present: boolean;
    zero: boolean;
    data: boolean;
  }[];
  const out: Extent[] = [];
  for (const e of raw) {
    const kind = e.data ? 'data' : e.present ? 'zero' : 'hole';
    const last = out[out.length - 1];
    if (last !== undefined && last.kind === kind) {
      out[out.length - 1] = { ...last, length: last.length + e.length };
    } else out.push({ offset: e.start, length: e.length, kind });
  }
  return out;
}

/** Asserts ferry's allocation map equals qemu-img map's. */
async function assertSameMap(img: DiskImage, path: string): Promise<void> {
  assert.deepEqual(await collectExtents(img.extents()), await qemuMap(path));
}

/** Deterministic pseudo-random ranges, some unaligned and crossing clusters. */
function ranges(size: number, n: number): [number, number][] {
  const out: [number, number][] = [];
  let x = 12345;
  const next = (): number => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x;
  };
  for (let i = 0; i < n; i++) {
    const len = 1 + (next() % (3 * 64 * KiB));
    out.push([next() % (size - len), len]);
  }
  return out;
}

/** Asserts that random reads of `a` and `b` return the same bytes. */
async function assertSameReads(a: DiskImage, b: DiskImage): Promise<void> {
  for (const [off, len] of ranges(Math.min(a.virtualSize, b.virtualSize), 40)) {
    assert.deepEqual(await a.read(off, len), await b.read(off, len), `read ${off}+${len}`);
  }
}

/** Opens both and asserts ferry compare and qemu-img compare call them identical. */
async function assertIdentical(a: string, b: string): Promise<void> {
  const ia = await openImage(a);
  const ib = await openImage(b);
  try {
    const r = await compareImages(ia, ib);
    assert.equal(r.identical, true, `ferry: first difference at ${r.firstDifferingByte}`);
  } finally {
    await ia.close();
    await ib.close();
  }
  const q = await qemuCompare(a, b);
  assert.equal(q.identical, true, q.output);
}

/** Percentage of compressed clusters per qemu-img check. */
function compressedPercent(checkOutput: string): number {
  const m = /([\d.]+)% compressed clusters/.exec(checkOutput);
  return m === null ? 0 : Number(m[1]);
}

interface Variant {
  readonly name: string;
  readonly args: readonly string[];
  readonly details: Record<string, unknown>;
  readonly compressed?: boolean;
}

const VARIANTS: readonly Variant[] = [
  { name: 'v2 (compat=0.10)', args: ['-o', 'compat=0.10'], details: { version: 2 } },
  {
    name: 'v3 64 KiB clusters',
    args: ['-o', 'compat=1.1'],
    details: { version: 3, clusterSize: 65536, extendedL2: false, refcountBits: 16 },
  },
  { name: 'v3 512-byte clusters', args: ['-o', 'cluster_size=512'], details: { clusterSize: 512 } },
  { name: 'v3 2 MiB clusters', args: ['-o', 'cluster_size=2M'], details: { clusterSize: 2 * MiB } },
  {
    name: 'extended L2, 64 KiB clusters',
    args: ['-o', 'extended_l2=on'],
    details: { extendedL2: true },
  },
  {
    name: 'extended L2, 16 KiB clusters',
    args: ['-o', 'extended_l2=on,cluster_size=16k'],
    details: { extendedL2: true, clusterSize: 16 * KiB },
  },
  {
    name: 'refcount_bits=1 and lazy refcounts',
    args: ['-o', 'refcount_bits=1,lazy_refcounts=on'],
    details: { refcountBits: 1, lazyRefcounts: true },
  },
  {
    name: 'compressed, deflate',
    args: ['-c'],
    details: { compressionType: 'deflate' },
    compressed: true,
  },
  {
    name: 'compressed, deflate, v2',
    args: ['-c', '-o', 'compat=0.10'],
    details: { version: 2, compressionType: 'deflate' },
    compressed: true,
  },
  {
    name: 'compressed, deflate, 512-byte clusters',
    args: ['-c', '-o', 'cluster_size=512'],
    details: { clusterSize: 512 },
    compressed: true,
  },
  {
    name: 'compressed, zstd',
    args: ['-c', '-o', 'compression_type=zstd'],
    details: { compressionType: 'zstd' },
    compressed: true,
  },
  {
    name: 'compressed, zstd, 2 MiB clusters',
    args: ['-c', '-o', 'compression_type=zstd,cluster_size=2M'],
    details: { compressionType: 'zstd', clusterSize: 2 * MiB },
    compressed: true,
  },
  {
    name: 'compressed, zstd, extended L2',
    args: ['-c', '-o', 'compression_type=zstd,extended_l2=on'],
    details: { compressionType: 'zstd', extendedL2: true },
    compressed: true,
  },
];

/** The mixed disk plus a compressible run (text-like bytes) so compressed images compress. */
async function writeSource(path: string, size = MIXED_SIZE): Promise<void> {
  await writeRawDisk(path, size, [
    ...MIXED_REGIONS,
    { offset: 7 * MiB + 4096, length: 700 * KiB, fill: 0x41 },
  ]);
  const text = Buffer.from('ferry qcow2 compressible line of text\n'.repeat(4000));
  const fh = await open(path, 'r+');
  try {
    await fh.write(text, 0, text.length, 8 * MiB);
  } finally {
    await fh.close();
  }
}

describe('qcow2 reader: images qemu-img writes', () => {
  for (const v of VARIANTS) {
    it(`${v.name}: reads what qemu reads, maps what qemu maps`, async () => {
      await withTempDir(async (dir) => {
        const raw = join(dir, 'src.raw');
        const q = join(dir, 'img.qcow2');
        await writeSource(raw);
        await qemuImg('convert', '-f', 'raw', '-O', 'qcow2', ...v.args, raw, q);
        if (v.compressed) assert.ok(compressedPercent((await qemuCheck(q, 'qcow2')).output) > 0);
        const img = await openImage(q);
        const src = await openImage(raw);
        try {
          assert.equal(img.format, 'qcow2');
          assert.equal(img.virtualSize, MIXED_SIZE);
          assert.deepEqual(img.warnings, []);
          const d = img.details();
          for (const [k, want] of Object.entries(v.details)) assert.equal(d[k], want, k);
          await assertSameMap(img, q);
          await assertSameReads(img, src);
        } finally {
          await img.close();
          await src.close();
        }
        await assertIdentical(raw, q);
      });
    });
  }

  it('reads zero clusters (allocated and plain) as zero extents, as qemu maps them', async () => {
    await withTempDir(async (dir) => {
      const q = join(dir, 'z.qcow2');
      await qemuImg('create', '-q', '-f', 'qcow2', q, String(4 * MiB + 3 * 512));
      await qemuIo(q, [
        'write -P 0x33 0 256k',
        'write -z 64k 64k', // keeps its host cluster: ZERO_ALLOC
        'write -z -u 128k 64k', // drops it: ZERO_PLAIN
        'write -z 1M 128k', // unallocated before: ZERO_PLAIN
        'write -P 0x44 4M 1536', // the short last cluster
      ]);
      const img = await openImage(q);
      try {
        const ext = await collectExtents(img.extents());
        assert.deepEqual(
          ext.filter((e) => e.kind === 'zero'),
          [
            { offset: 64 * KiB, length: 128 * KiB, kind: 'zero' },
            { offset: MiB, length: 128 * KiB, kind: 'zero' },
          ],
        );
        await assertSameMap(img, q);
        assert.ok((await img.read(64 * KiB, 128 * KiB)).equals(Buffer.alloc(128 * KiB)));
        assert.ok((await img.read(4 * MiB, 1536)).equals(Buffer.alloc(1536, 0x44)));
      } finally {
        await img.close();
      }
      const back = join(dir, 'z.raw');
      await qemuImg('convert', '-f', 'qcow2', '-O', 'raw', q, back);
      await assertIdentical(q, back);
    });
  });

  it('reads extended L2 subclusters: partly allocated, partly zero', async () => {
    await withTempDir(async (dir) => {
      const q = join(dir, 'x.qcow2');
      await qemuImg('create', '-q', '-f', 'qcow2', '-o', 'extended_l2=on', q, String(3 * MiB));
      await qemuIo(q, [
        'write -P 0x21 0 64k',
        'write -z 4k 8k',
        'write -P 0x22 130k 3k',
        'write -z 200k 4k',
        'write -P 0x23 1M 2k',
      ]);
      const img = await openImage(q);
      try {
        await assertSameMap(img, q);
        const ext = await collectExtents(img.extents());
        assert.ok(ext.some((e) => e.kind === 'zero' && e.length < 64 * KiB));
        assert.ok((await img.read(130 * KiB, 3 * KiB)).equals(Buffer.alloc(3 * KiB, 0x22)));
      } finally {
        await img.close();
      }
      const back = join(dir, 'x.raw');
      await qemuImg('convert', '-f', 'qcow2', '-O', 'raw', q, back);
      await assertIdentical(q, back);
    });
  });

  it('opens a dirty image (lazy refcounts, not closed) read-only with a warning', async () => {
    await withTempDir(async (dir) => {
      const q = join(dir, 'd.qcow2');
      await qemuImg('create', '-q', '-f', 'qcow2', '-o', 'lazy_refcounts=on', q, String(4 * MiB));
      await qemuIo(q, ['write -P 0x5a 64k 192k', 'abort']).catch(() => {});
      const img = await openImage(q);
      try {
        assert.equal(img.details().dirty, true);
        assert.deepEqual(
          img.warnings.map((w) => w.code),
          ['QCOW2_DIRTY'],
        );
        assert.ok((await img.read(64 * KiB, 192 * KiB)).equals(Buffer.alloc(192 * KiB, 0x5a)));
        await assertSameMap(img, q);
      } finally {
        await img.close();
      }
    });
  });

  it('reads the active state of an image with an internal snapshot', async () => {
    await withTempDir(async (dir) => {
      const raw = join(dir, 'src.raw');
      const q = join(dir, 's.qcow2');
      await writeSource(raw);
      await qemuImg('convert', '-f', 'raw', '-O', 'qcow2', raw, q);
      await qemuImg('snapshot', '-c', 'before', q);
      await qemuIo(q, ['write -P 0x99 0 100k', 'write -z 1M 64k']);
      const img = await openImage(q);
      try {
        assert.equal(img.details().snapshots, 1);
        await assertSameMap(img, q);
      } finally {
        await img.close();
      }
      const back = join(dir, 's.raw');
      await qemuImg('convert', '-f', 'qcow2', '-O', 'raw', q, back);
      await assertIdentical(q, back);
    });
  });

  it('maps a 100 GiB sparse image from metadata only', async () => {
    await withTempDir(async (dir) => {
      const q = join(dir, 'big.qcow2');
      await qemuImg('create', '-q', '-f', 'qcow2', q, '100G');
      await qemuIo(q, ['write -P 0x71 0 1M', 'write -P 0x72 99G 64k', 'write -P 0x73 102399M 1M']);
      const img = await openImage(q);
      try {
        assert.equal(img.virtualSize, 100 * 1024 * MiB);
        await assertSameMap(img, q);
        assert.ok((await img.read(99 * 1024 * MiB, 64 * KiB)).equals(Buffer.alloc(64 * KiB, 0x72)));
      } finally {
        await img.close();
      }
    });
  });

  it('reads the images the corpus builder makes exactly as qemu does', async () => {
    await withTempDir(async (dir) => {
      const builds = {
        plain: buildQcow2(),
        zstd: buildQcow2({ compression: 'zstd' }),
        big: buildQcow2({ clusterBits: 16 }),
        ext: buildQcow2({
          clusterBits: 14,
          extendedL2: true,
          clusters: [
            { index: 0, kind: 'data', fill: 1 },
            { index: 1, kind: 'sub', fill: 2, alloc: 0x0000ffff, zero: 0xff000000 },
            { index: 2, kind: 'zero' },
            { index: 3, kind: 'compressed', fill: 9 },
          ],
        }),
      };
      for (const [name, b] of Object.entries(builds)) {
        const q = join(dir, `${name}.qcow2`);
        await writeFile(q, b.image);
        const check = await qemuCheck(q, 'qcow2');
        assert.ok(check.ok, check.output);
        const back = join(dir, `${name}.raw`);
        await qemuImg('convert', '-f', 'qcow2', '-O', 'raw', q, back);
        await assertIdentical(q, back);
        const img = await openImage(q);
        try {
          await assertSameMap(img, q);
          for (const [index, content] of b.layout.contents) {
            const got = await img.read(index * b.layout.clusterSize, b.layout.clusterSize);
            if (name !== 'ext' || index !== 1) assert.ok(got.equals(content), `${name} ${index}`);
          }
        } finally {
          await img.close();
        }
      }
    });
  });
});

describe('qcow2 reader: refusals of images qemu-img writes', () => {
  it('refuses a backing file without opening it', async () => {
    await withTempDir(async (dir) => {
      const base = join(dir, 'base.qcow2');
      const q = join(dir, 'overlay.qcow2');
      await qemuImg('create', '-q', '-f', 'qcow2', base, '1M');
      await qemuImg('create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', q);
      await assert.rejects(openImage(q), (e) => isFerryError(e, 'FERRY_QCOW2_BACKING_FILE'));
    });
  });

  it('refuses an external data file', async () => {
    await withTempDir(async (dir) => {
      const q = join(dir, 'd.qcow2');
      await qemuImg(
        'create',
        '-q',
        '-f',
        'qcow2',
        '-o',
        `data_file=${join(dir, 'd.raw')}`,
        q,
        '1M',
      );
      await assert.rejects(openImage(q), (e) => isFerryError(e, 'FERRY_QCOW2_DATA_FILE'));
    });
  });

  it('refuses encryption (legacy AES; LUKS is in the malformed corpus)', async () => {
    await withTempDir(async (dir) => {
      const q = join(dir, 'e.qcow2');
      // LUKS creation benchmarks PBKDF for seconds; the AES header is created at once.
      await qemuImg(
        'create',
        '-q',
        '--object',
        'secret,id=sec0,data=ferry',
        '-f',
        'qcow2',
        '-o',
        'encrypt.format=aes,encrypt.key-secret=sec0',
        q,
        '1M',
      );
      await assert.rejects(openImage(q), (e) => isFerryError(e, 'FERRY_QCOW2_ENCRYPTED'));
    });
  });
});

describe('qcow2 writer', () => {
  it('raw -> qcow2: passes qemu-img check, identical to the source, zero runs unallocated', async () => {
    await withTempDir(async (dir) => {
      const raw = join(dir, 'src.raw');
      const q = join(dir, 'out.qcow2');
      await writeSource(raw);
      const r = await convertImage(raw, q, { to: 'qcow2' });
      assert.equal(r.fileSize, (await stat(q)).size);
      const check = await qemuCheck(q, 'qcow2');
      assert.ok(check.ok, check.output);
      assert.match(check.output, /No errors were found/);
      const info = await qemuInfo(q, 'qcow2');
      assert.equal(info['virtual-size'], MIXED_SIZE);
      assert.equal(info['cluster-size'], 65536);
      const spec = (info['format-specific'] as { data: Record<string, unknown> }).data;
      assert.equal(spec.compat, '1.1');
      assert.equal(spec['refcount-bits'], 16);
      await assertIdentical(raw, q);
      // The explicit zero run at 6 MiB and the hole after the data stay unallocated.
      const map = await qemuMap(q);
      const at6 = map.find((e) => e.offset <= 6 * MiB && e.offset + e.length > 6 * MiB)!;
      assert.equal(at6.kind, 'hole');
      assert.ok(at6.offset + at6.length >= 7 * MiB);
      // And back: qcow2 -> raw with ferry.
      const back = join(dir, 'back.raw');
      await convertImage(q, back, { to: 'raw' });
      await assertIdentical(raw, back);
      assert.equal((await qemuCompare(raw, back, 'raw', 'raw')).identical, true);
    });
  });

  it('raw -> compressed qcow2: deflate clusters qemu reads back, check passes', async () => {
    await withTempDir(async (dir) => {
      const raw = join(dir, 'src.raw');
      const plain = join(dir, 'plain.qcow2');
      const q = join(dir, 'c.qcow2');
      await writeSource(raw);
      await convertImage(raw, plain, { to: 'qcow2' });
      await convertImage(raw, q, { to: 'qcow2', compress: true });
      const check = await qemuCheck(q, 'qcow2');
      assert.ok(check.ok, check.output);
      assert.ok(compressedPercent(check.output) > 0, check.output);
      assert.ok((await stat(q)).size < (await stat(plain)).size);
      await assertIdentical(raw, q);
      // qemu's own decompression agrees byte for byte.
      const back = join(dir, 'back.raw');
      await qemuImg('convert', '-f', 'qcow2', '-O', 'raw', q, back);
      assert.ok((await readFile(back)).equals(await readFile(raw)));
    });
  });

  it('qemu zstd qcow2 -> ferry qcow2 -> raw round trip', async () => {
    await withTempDir(async (dir) => {
      const raw = join(dir, 'src.raw');
      const z = join(dir, 'z.qcow2');
      const q = join(dir, 'f.qcow2');
      const back = join(dir, 'back.raw');
      await writeSource(raw);
      await qemuImg('convert', '-c', '-O', 'qcow2', '-o', 'compression_type=zstd', raw, z);
      await convertImage(z, q, { to: 'qcow2' });
      assert.ok((await qemuCheck(q, 'qcow2')).ok);
      await convertImage(q, back, { to: 'raw' });
      await assertIdentical(raw, back);
      await assertIdentical(z, q);
    });
  });

  for (const bits of [9, 12, 21]) {
    for (const compress of [false, true]) {
      it(`${2 ** bits}-byte clusters${compress ? ', compressed' : ''}: many L2 tables and refcount blocks`, async () => {
        await withTempDir(async (dir) => {
          const raw = join(dir, 'src.raw');
          const q = join(dir, 'small.qcow2');
          await writeSource(raw);
          const img = await openImage(raw);
          try {
            const w = await createQcow2Writer(q, { virtualSize: img.virtualSize, compress }, bits);
            await copyImage(img, w);
          } finally {
            await img.close();
          }
          const check = await qemuCheck(q, 'qcow2');
          assert.ok(check.ok, check.output);
          assert.equal(compressedPercent(check.output) > 0, compress);
          await assertIdentical(raw, q);
        });
      });
    }
  }

  it('rounds a size that is not a multiple of 512 up, as qemu-img does', async () => {
    await withTempDir(async (dir) => {
      const raw = join(dir, 'odd.raw');
      const q = join(dir, 'odd.qcow2');
      const size = 3 * MiB + 1000;
      await writeRawDisk(raw, size, [{ offset: size - 700, length: 700, fill: 'random' }]);
      const r = await convertImage(raw, q, { to: 'qcow2' });
      assert.equal(r.virtualSize, size);
      const img = await openImage(q);
      try {
        assert.equal(img.virtualSize, 3 * MiB + 1024);
      } finally {
        await img.close();
      }
      assert.ok((await qemuCheck(q, 'qcow2')).ok);
      await assertIdentical(raw, q);
    });
  });

  it('writes an all-zero disk as metadata only', async () => {
    await withTempDir(async (dir) => {
      const raw = join(dir, 'z.raw');
      const q = join(dir, 'z.qcow2');
      await writeRawDisk(raw, 64 * MiB, [{ offset: MiB, length: MiB, fill: 'zero' }]);
      await convertImage(raw, q, { to: 'qcow2' });
      assert.ok((await qemuCheck(q, 'qcow2')).ok);
      assert.ok((await stat(q)).size <= 5 * 64 * KiB);
      assert.deepEqual(await qemuMap(q), [{ offset: 0, length: 64 * MiB, kind: 'hole' }]);
    });
  });

  it('writes a zero-size disk qemu accepts', async () => {
    await withTempDir(async (dir) => {
      const raw = join(dir, 'e.raw');
      const q = join(dir, 'e.qcow2');
      await writeFile(raw, Buffer.alloc(0));
      await convertImage(raw, q, { to: 'qcow2' });
      assert.ok((await qemuCheck(q, 'qcow2')).ok);
      assert.equal((await qemuInfo(q, 'qcow2'))['virtual-size'], 0);
    });
  });

  it('spans L2 tables: data far apart in a 5 GiB disk', async () => {
    await withTempDir(async (dir) => {
      const src = join(dir, 'src.qcow2');
      const q = join(dir, 'out.qcow2');
      await qemuImg('create', '-q', '-f', 'qcow2', src, '5G');
      await qemuIo(src, ['write -P 0x61 0 3M', 'write -P 0x62 1G 64k', 'write -P 0x63 5119M 1M']);
      for (const compress of [false, true]) {
        await convertImage(src, q, { to: 'qcow2', compress, overwrite: true });
        const check = await qemuCheck(q, 'qcow2');
        assert.ok(check.ok, check.output);
        await assertIdentical(src, q);
      }
    });
  });

  it('an aborted write leaves no file behind', async () => {
    await withTempDir(async (dir) => {
      const q = join(dir, 'a.qcow2');
      for (const compress of [false, true]) {
        const w = await createQcow2Writer(q, { virtualSize: 8 * MiB, compress });
        await w.write(0, Buffer.alloc(2 * MiB, 7));
        await w.abort();
      }
      assert.deepEqual(await readdir(dir), []);
    });
  });
});
