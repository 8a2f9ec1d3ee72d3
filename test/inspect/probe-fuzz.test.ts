import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, open, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { it } from 'node:test';
import fc from 'fast-check';
import { isFerryError } from '../../src/errors/index.js';
import { probeFilesystem } from '../../src/inspect/fs/probe.js';
import { LVM_CRC_SEED } from '../../src/inspect/fs/probe-lvm.js';
import { ReadCounter, type Volume, volumeOf } from '../../src/inspect/volume.js';
import { crc32Raw } from '../../src/util/crc32.js';
import { FUZZ_SECONDS } from '../helpers/fuzz.js';
import { withTempDir } from '../helpers/qemu.js';

function have(tool: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

interface Seed {
  readonly name: string;
  readonly size: number;
  readonly read: (offset: number, length: number) => Promise<Buffer>;
  readonly hot: readonly (readonly [number, number])[];
}

const HEAD: readonly [number, number] = [0, 4096];

/** Seeds: one small image per filesystem the tools here can make, read from their files. */
async function makeSeeds(dir: string, handles: { close(): Promise<unknown> }[]): Promise<Seed[]> {
  const specs: [
    string,
    string,
    number,
    (img: string) => string[],
    (readonly [number, number])[],
  ][] = [
    [
      'mke2fs',
      'ext4',
      4 << 20,
      (img) => ['-q', '-F', '-t', 'ext4', '-L', 'r', img],
      [[1024, 2048]],
    ],
    ['mke2fs', 'ext2', 4 << 20, (img) => ['-q', '-F', '-t', 'ext2', img], [[1024, 2048]]],
    ['mkfs.xfs', 'xfs', 320 << 20, (img) => ['-q', '-f', '-L', 'x', img], [[0, 512]]],
    [
      'mkfs.btrfs',
      'btrfs',
      16 << 20,
      (img) => ['-q', '--mixed', '-L', 'b', img],
      [[65536, 65536 + 1024]],
    ],
    ['mkfs.vfat', 'fat12', 2 << 20, (img) => ['-F', '12', '-n', 'E', img], [[0, 512]]],
    ['mkfs.vfat', 'fat32', 64 << 20, (img) => ['-F', '32', '-n', 'E', img], [[0, 512]]],
    ['mkntfs', 'ntfs', 8 << 20, (img) => ['-q', '-F', '-f', '-L', 'w', img], [[0, 512]]],
    [
      'mkswap',
      'swap',
      1 << 20,
      (img) => ['-L', 's', img],
      [
        [1024, 1100],
        [4086, 4096],
      ],
    ],
  ];
  const seeds: Seed[] = [];
  for (const [tool, name, size, args, hot] of specs) {
    if (!have(tool)) continue;
    const img = join(dir, `${name}.img`);
    await writeFile(img, '');
    await truncate(img, size);
    execFileSync(tool, args(img), { stdio: 'ignore' });
    const fh = await open(img, 'r');
    handles.push(fh);
    const read = async (o: number, l: number): Promise<Buffer> => {
      const b = Buffer.alloc(l);
      await fh.read(b, 0, l, o);
      return b;
    };
    const extra: (readonly [number, number])[] = [];
    if (name === 'ntfs') {
      // The MFT records holding "FILE" and $Volume.
      const bs = await read(0, 512);
      const mft = Number(bs.readBigUInt64LE(0x30)) * bs.readUInt16LE(0x0b) * bs[0x0d]!;
      extra.push([mft, mft + 4096]);
    }
    seeds.push({ name, size, read, hot: [HEAD, ...hot, ...extra] });
  }
  if (have('xorriso')) {
    await mkdir(join(dir, 'iso'));
    await writeFile(join(dir, 'iso', 'a'), 'a');
    const img = join(dir, 'c.iso');
    execFileSync(
      'xorriso',
      ['-as', 'mkisofs', '-quiet', '-J', '-V', 'L', '-o', img, join(dir, 'iso')],
      { stdio: 'ignore' },
    );
    const fh = await open(img, 'r');
    handles.push(fh);
    const { size } = await fh.stat();
    seeds.push({
      name: 'iso',
      size,
      read: async (o, l) => {
        const b = Buffer.alloc(l);
        await fh.read(b, 0, l, o);
        return b;
      },
      hot: [[32768, 32768 + 3 * 2048]],
    });
  }
  if (have('cryptsetup')) {
    const img = join(dir, 'luks.img');
    await writeFile(img, '');
    await truncate(img, 20 << 20);
    await writeFile(join(dir, 'key'), 'k');
    execFileSync(
      'cryptsetup',
      [
        'luksFormat',
        '-q',
        '--type',
        'luks2',
        '--pbkdf',
        'pbkdf2',
        '--pbkdf-force-iterations',
        '1000',
        '--label',
        'v',
        '--key-file',
        join(dir, 'key'),
        img,
      ],
      {
        stdio: 'ignore',
      },
    );
    const fh = await open(img, 'r');
    handles.push(fh);
    seeds.push({
      name: 'luks2',
      size: 20 << 20,
      read: async (o, l) => {
        const b = Buffer.alloc(l);
        await fh.read(b, 0, l, o);
        return b;
      },
      hot: [[0, 512]],
    });
  }
  // LVM2 PV label, built from the on-disk format.
  const pv = Buffer.alloc(1 << 20);
  const l = pv.subarray(512, 1024);
  l.write('LABELONE', 0, 'latin1');
  l.writeBigUInt64LE(1n, 8);
  l.writeUInt32LE(32, 20);
  l.write('LVM2 001', 24, 'latin1');
  l.write('abcdefghijklmnopqrstuvwxyz012345', 32, 'latin1');
  l.writeBigUInt64LE(BigInt(pv.length), 64);
  l.writeUInt32LE(crc32Raw(l.subarray(20), LVM_CRC_SEED), 16);
  seeds.push({
    name: 'lvm2',
    size: pv.length,
    read: async (o, len) => Buffer.from(pv.subarray(o, o + len)),
    hot: [[512, 600]],
  });
  return seeds;
}

/**
 * Mutated filesystem signatures (byte and field patches over each seed,
 * focused on superblocks, and volumes cut short): probeFilesystem returns a
 * probe or null, or throws a FerryError, never reads outside the volume, and
 * reads only a few KiB.
 */
it('probeFilesystem survives mutated superblocks and short volumes with only coded errors', async () => {
  await withTempDir(async (dir) => {
    const handles: { close(): Promise<unknown> }[] = [];
    try {
      const seeds = await makeSeeds(dir, handles);
      const hostile = [0, 1, 0xff, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff];
      const stats = { runs: 0, found: 0, none: 0, refused: 0 };
      await fc.assert(
        fc.asyncProperty(
          fc.nat({ max: seeds.length - 1 }),
          fc.array(
            fc.record({
              r: fc.nat(),
              at: fc.nat(),
              v: fc.nat({ max: 255 }),
              wide: fc.constantFrom(0, 1, 2, 3),
              h: fc.constantFrom(...hostile),
            }),
            { minLength: 1, maxLength: 10 },
          ),
          fc.option(fc.nat(), { freq: 4 }),
          async (si, muts, cut) => {
            const seed = seeds[si]!;
            const patches = new Map<number, number>();
            for (const m of muts) {
              const range = seed.hot[m.r % seed.hot.length]!;
              const at = range[0] + (m.at % Math.max(1, range[1] - range[0]));
              const bytes = Buffer.alloc(8);
              if (m.wide === 0) bytes[0] = m.v;
              else if (m.wide === 1) bytes.writeUInt16LE(m.h & 0xffff);
              else if (m.wide === 2) bytes.writeUInt32LE(m.h >>> 0);
              else bytes.fill(0xff);
              const n = [1, 2, 4, 8][m.wide]!;
              for (let k = 0; k < n; k++) patches.set(at + k, bytes[k]!);
            }
            const size = cut === null ? seed.size : cut % (seed.size + 1);
            const image = {
              virtualSize: size,
              read: async (offset: number, length: number) => {
                const b = await seed.read(offset, length);
                for (const [at, v] of patches)
                  if (at >= offset && at < offset + length) b[at - offset] = v;
                return b;
              },
            };
            const counter = new ReadCounter();
            const volume: Volume = volumeOf(image, 0, size, counter);
            stats.runs++;
            try {
              const p = await probeFilesystem(volume);
              if (p === null) stats.none++;
              else {
                stats.found++;
                assert.ok(
                  p.size === null || (Number.isSafeInteger(p.size) && p.size >= 0),
                  `size ${p.size}`,
                );
                assert.ok(p.uuid === null || typeof p.uuid === 'string');
                assert.ok(p.label === null || typeof p.label === 'string');
              }
            } catch (error) {
              if (!isFerryError(error)) throw error;
              assert.notEqual(
                error.code,
                'FERRY_READ_OUT_OF_RANGE',
                `read outside the volume: ${error.message}`,
              );
              stats.refused++;
            }
            assert.ok(counter.bytes <= 64 * 1024, `read ${counter.bytes} bytes`);
          },
        ),
        {
          interruptAfterTimeLimit: FUZZ_SECONDS * 1000,
          numRuns: 1_000_000,
          seed: Number(process.env.FERRY_FUZZ_SEED ?? Date.now() % 2 ** 31),
        },
      );
      assert.ok(stats.runs > 10, `only ${stats.runs} runs`);
      assert.ok(stats.found > 0, 'no mutant was recognized: the fuzzer is not reaching the probes');
    } finally {
      for (const h of handles) await h.close();
    }
  });
});
