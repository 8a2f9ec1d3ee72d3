import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { isFerryError } from '../../src/errors/index.js';
import { openExt } from '../../src/inspect/fs/ext/index.js';
import { bufferVolume } from '../../src/inspect/volume.js';
import {
  type BaseKind,
  bmap,
  extBaseImage,
  extentRows,
  haveExtTools,
  inodeNumber,
  inodeOffset,
  walkFs,
} from '../corpus/ext.js';
import { FUZZ_SECONDS } from '../helpers/fuzz.js';

interface Seed {
  readonly kind: BaseKind;
  readonly img: Buffer;
  /** Metadata byte ranges: superblock, group descriptors, inode table, directory and extent blocks. */
  readonly hot: ReadonlyArray<readonly [number, number]>;
}

async function makeSeed(dir: string, kind: BaseKind): Promise<Seed> {
  const b = await extBaseImage(dir, kind);
  const hot: Array<readonly [number, number]> = [
    [1024, 2048],
    [2048, 2048 + b.bs],
  ];
  // The inode table from the root inode to the last inode mke2fs used.
  const inodeSize = b.img.readUInt16LE(1024 + 0x58);
  const first = inodeOffset(b.path, b.bs, '<1>');
  const lastIno = inodeNumber(b.path, '/slowlink');
  hot.push([first, first + lastIno * inodeSize]);
  for (const d of ['/', '/dir', '/sub', '/sub/inner', '/hello.txt', '/small']) {
    const at = inodeOffset(b.path, b.bs, d);
    hot.push([at, at + inodeSize]);
    // Inline directories have no block: their entries are in the inode.
    let blk = 0;
    try {
      blk = bmap(b.path, d, 0);
    } catch {
      continue;
    }
    hot.push([blk * b.bs, (blk + 1) * b.bs]);
  }
  const node = extentRows(b.path, '/frag.bin').find((r) => r.level === 0 && r.maxLevel >= 1);
  if (node !== undefined) hot.push([node.physical * b.bs, (node.physical + 1) * b.bs]);
  return { kind, img: b.img, hot };
}

const HOSTILE = [
  0, 1, 2, 3, 4, 7, 12, 0x7f, 0x80, 0xff, 0x100, 0xf30a, 0xfffe, 0xffff, 0x10000, 0x7fffffff,
  0x80000000, 0xffffffff,
];

describe('ext reader fuzz', {
  skip: haveExtTools ? false : 'e2fsprogs (mke2fs, debugfs) not installed',
}, () => {
  let dir = '';
  const seeds: Seed[] = [];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-ext-fuzz-'));
    for (const kind of ['ext4', 'ext2', 'inline'] as const) seeds.push(await makeSeed(dir, kind));
  });
  after(async () => {
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it('every seed walks cleanly before mutation', async () => {
    for (const s of seeds) {
      const driver = await openExt(bufferVolume(s.img));
      assert.ok(driver !== null);
      const r = await walkFs(driver);
      assert.equal(r.errors, 0, s.kind);
    }
  });

  it(`mutated images open, list and read, or fail with a FerryError (${FUZZ_SECONDS} s)`, async () => {
    const stats = { runs: 0, opened: 0, refused: 0, nodeErrors: 0 };
    const mutation = fc.record({
      kind: fc.constantFrom('byte', 'u16', 'u32', 'zero-run', 'byte', 'u32', 'truncate'),
      at: fc.nat(),
      value: fc.oneof(fc.constantFrom(...HOSTILE), fc.nat({ max: 0xffffffff })),
      hot: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: seeds.length - 1 }),
        fc.array(mutation, { minLength: 1, maxLength: 6 }),
        async (si, muts) => {
          const seed = seeds[si]!;
          let buf = Buffer.from(seed.img);
          for (const m of muts) {
            let at = m.at % buf.length;
            if (m.hot) {
              const [lo, hi] = seed.hot[m.at % seed.hot.length]!;
              at = lo + (Math.floor(m.at / seed.hot.length) % Math.max(1, hi - lo));
            }
            if (m.kind === 'byte') buf[at] = m.value & 0xff;
            else if (m.kind === 'u16' && at + 2 <= buf.length)
              buf.writeUInt16LE(m.value & 0xffff, at);
            else if (m.kind === 'u32' && at + 4 <= buf.length) buf.writeUInt32LE(m.value >>> 0, at);
            else if (m.kind === 'zero-run')
              buf.fill(0, at, Math.min(buf.length, at + (m.value % 64)));
            else if (m.kind === 'truncate' && !m.hot) buf = buf.subarray(0, at);
            if (buf.length === 0) break;
          }
          stats.runs++;
          try {
            const driver = await openExt(bufferVolume(buf));
            if (driver === null) return;
            const r = await walkFs(driver, {
              tolerant: true,
              maxNodes: 5000,
              maxFileBytes: 256 * 1024,
            });
            stats.opened++;
            stats.nodeErrors += r.errors;
          } catch (error) {
            if (!isFerryError(error)) throw error;
            stats.refused++;
          }
        },
      ),
      {
        interruptAfterTimeLimit: FUZZ_SECONDS * 1000,
        numRuns: 1_000_000,
        seed: Number(process.env.FERRY_FUZZ_SEED ?? Date.now() % 2 ** 31),
      },
    );
    console.log(`# ext fuzz: ${JSON.stringify(stats)}`);
    assert.ok(stats.runs > 0);
  });
});
