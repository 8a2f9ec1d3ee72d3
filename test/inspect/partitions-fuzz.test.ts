import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { it } from 'node:test';
import fc from 'fast-check';
import { isFerryError } from '../../src/errors/index.js';
import { readPartitionTable } from '../../src/inspect/partitions/index.js';
import { ReadCounter, volumeOf } from '../../src/inspect/volume.js';
import { buildMbr, fixGptCrc, smallGpt, writeMbrEntry } from '../corpus/partitions.js';
import { FUZZ_SECONDS } from '../helpers/fuzz.js';
import { withTempDir } from '../helpers/qemu.js';

function have(...tools: string[]): boolean {
  try {
    execFileSync('sh', ['-c', tools.map((t) => `command -v ${t}`).join(' && ')], {
      stdio: 'ignore',
    });
    return true;
  } catch {
    return false;
  }
}

interface Seed {
  readonly name: string;
  readonly buf: Buffer;
  /** Metadata byte ranges mutations focus on. */
  readonly hot: readonly (readonly [number, number])[];
}

/** An MBR with three primaries and an extended partition of three logical ones. */
function mbrSeed(): Seed {
  const buf = buildMbr({
    sectors: 4096,
    primaries: [
      { slot: 0, type: 0x83, start: 64, sectors: 1000, boot: 0x80 },
      { slot: 2, type: 0x82, start: 1100, sectors: 500 },
    ],
    extended: {
      slot: 1,
      start: 2000,
      sectors: 2000,
      logicals: [
        { start: 2001, sectors: 500, type: 0x83 },
        { start: 2600, sectors: 500, type: 0x8e },
        { start: 3200, sectors: 700, type: 0x07 },
      ],
    },
  });
  const ebrs = [2000, 2599, 3199].map((s) => [s * 512 + 446, s * 512 + 512] as const);
  return { name: 'code-built MBR', buf, hot: [[440, 512], ...ebrs] };
}

function gptHot(buf: Buffer, ss: number): (readonly [number, number])[] {
  const last = buf.length - ss;
  return [
    [446, 512],
    [ss, ss + 92],
    [2 * ss, 2 * ss + 3 * 128],
    [last, last + 92],
    [last - 32 * 512, last - 32 * 512 + 3 * 128],
  ];
}

async function toolSeeds(dir: string): Promise<Seed[]> {
  const out: Seed[] = [];
  if (have('sfdisk')) {
    const img = join(dir, 'mbr.img');
    await writeFile(img, '');
    await truncate(img, 2 * 1024 * 1024);
    execFileSync('sfdisk', ['-q', img], {
      input:
        'label: dos\nstart=64, size=500, type=83, bootable\nstart=600, size=3000, type=5\nstart=700, size=300, type=83\nstart=1100, size=300, type=82\n',
    });
    out.push({
      name: 'sfdisk MBR',
      buf: await readFile(img),
      hot: [
        [440, 512],
        [600 * 512 + 446, 600 * 512 + 512],
        [1099 * 512 + 446, 1099 * 512 + 512],
      ],
    });
  }
  if (have('sgdisk')) {
    const img = join(dir, 'gpt.img');
    await writeFile(img, '');
    await truncate(img, 2 * 1024 * 1024);
    execFileSync(
      'sgdisk',
      [
        '-a',
        '8',
        '-n',
        '1:40:+100K',
        '-t',
        '1:ef02',
        '-n',
        '2:0:+500K',
        '-t',
        '2:ef00',
        '-n',
        '3:0:0',
        '-h',
        '2',
        img,
      ],
      { stdio: 'ignore' },
    );
    const buf = await readFile(img);
    out.push({ name: 'sgdisk hybrid GPT', buf, hot: gptHot(buf, 512) });
  }
  return out;
}

/**
 * Mutated partition tables (bytes, hostile 32/64-bit fields, truncation,
 * CRCs recomputed half the time so the checks behind them are reached):
 * every outcome is a table or a FerryError, reads stay inside the disk and
 * small, and the partitions reported have sane offsets.
 */
it('readPartitionTable survives mutated MBRs, EBR chains and GPTs with only coded errors', async () => {
  await withTempDir(async (dir) => {
    const g512 = smallGpt(512);
    const g4k = smallGpt(4096);
    const seeds: Seed[] = [
      mbrSeed(),
      { name: 'GPT 512', buf: g512, hot: gptHot(g512, 512) },
      {
        name: 'GPT 4096',
        buf: g4k,
        hot: [
          [446, 512],
          [4096, 4096 + 92],
          [8192, 8192 + 384],
          [g4k.length - 4096, g4k.length - 4096 + 92],
        ],
      },
      ...(await toolSeeds(dir)),
    ];
    // An EBR pointing at a later EBR so chain mutations can create loops.
    const chain = mbrSeed();
    writeMbrEntry(chain.buf, 3199 * 512, { slot: 1, type: 0x05, start: 0, sectors: 1 });
    seeds.push({ ...chain, name: 'looping chain' });
    const hostile = [0, 1, 2, 0x7f, 0x80, 0xee, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff];
    const stats = { runs: 0, tables: 0, refused: 0 };
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: seeds.length - 1 }),
        fc.array(
          fc.record({
            kind: fc.constantFrom('byte', 'u32', 'u64max', 'truncate', 'grow'),
            r: fc.nat(),
            at: fc.nat(),
            v: fc.nat({ max: 255 }),
            h: fc.constantFrom(...hostile),
          }),
          { minLength: 1, maxLength: 8 },
        ),
        fc.boolean(),
        async (si, muts, fix) => {
          const seed = seeds[si]!;
          let buf = Buffer.from(seed.buf);
          for (const m of muts) {
            const range = seed.hot[m.r % seed.hot.length] ?? [0, buf.length];
            const at = Math.min(
              buf.length - 8,
              range[0] + (m.at % Math.max(1, range[1] - range[0])),
            );
            if (at < 0) continue;
            if (m.kind === 'byte') buf[at] = m.v;
            else if (m.kind === 'u32') buf.writeUInt32LE(m.h >>> 0, at);
            else if (m.kind === 'u64max') buf.fill(0xff, at, at + 8);
            else if (m.kind === 'truncate') buf = buf.subarray(0, m.at % (buf.length + 1));
            else buf = Buffer.concat([buf, Buffer.alloc((m.at % 64) * 512)]);
          }
          if (fix) {
            for (const ss of [512, 4096]) {
              fixGptCrc(buf, ss, 1);
              if (buf.length >= ss) fixGptCrc(buf, ss, Math.floor(buf.length / ss) - 1);
            }
          }
          stats.runs++;
          const counter = new ReadCounter();
          const disk = volumeOf(
            { virtualSize: buf.length, read: async (o, l) => Buffer.from(buf.subarray(o, o + l)) },
            0,
            buf.length,
            counter,
          );
          try {
            const t = await readPartitionTable(disk);
            stats.tables++;
            for (const p of t.partitions) {
              assert.ok(Number.isSafeInteger(p.start) && p.start >= 0, `start ${p.start}`);
              assert.ok(Number.isSafeInteger(p.size) && p.size > 0, `size ${p.size}`);
              assert.ok(Number.isSafeInteger(p.index) && p.index >= 1);
            }
            assert.ok(t.findings.length <= 64);
          } catch (error) {
            if (!isFerryError(error)) throw error;
            assert.notEqual(
              error.code,
              'FERRY_READ_OUT_OF_RANGE',
              `read outside the disk: ${error.message}`,
            );
            stats.refused++;
          }
          assert.ok(counter.bytes <= 4 * 1024 * 1024, `read ${counter.bytes} bytes`);
        },
      ),
      {
        interruptAfterTimeLimit: FUZZ_SECONDS * 1000,
        numRuns: 1_000_000,
        seed: Number(process.env.FERRY_FUZZ_SEED ?? Date.now() % 2 ** 31),
      },
    );
    assert.ok(stats.runs > 10, `only ${stats.runs} runs`);
    assert.ok(
      stats.tables > 0 && stats.refused > 0,
      `tables ${stats.tables}, refused ${stats.refused}`,
    );
  });
});
