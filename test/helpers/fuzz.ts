import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BufferSource, openImageSource } from '../../src/disk/index.js';
import { isFerryError } from '../../src/errors/index.js';
import { exerciseImage } from './exercise.js';

/** Seconds each fuzz property may run; CI sets FERRY_FUZZ_SECONDS for a bounded run. */
export const FUZZ_SECONDS = Number(process.env.FERRY_FUZZ_SECONDS ?? '5');

/**
 * Mutation fuzzing of one parser: takes valid seed images (small, in memory),
 * flips bytes, overwrites 32/64-bit fields with hostile values and truncates;
 * every mutant must either open and read cleanly or fail with a FerryError.
 * Anything else (TypeError, RangeError, hang, runaway allocation) fails the test.
 * `hotRanges` focuses mutations on metadata (headers, tables) in each seed.
 */
export async function fuzzParser(
  seeds: readonly Buffer[],
  options: {
    hotRanges?: readonly (readonly [number, number])[];
    /** Applied to each mutant before it is opened (e.g. to recompute checksums so deeper code is reached). */
    fixup?: (mutant: Buffer) => void;
    seconds?: number;
    maxReadBytes?: number;
  } = {},
): Promise<{ runs: number; opened: number; refused: number }> {
  assert.ok(seeds.length > 0);
  const stats = { runs: 0, opened: 0, refused: 0 };
  const hostile = [0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff];
  const mutation = fc.oneof(
    fc.record({
      kind: fc.constant('byte' as const),
      at: fc.nat(),
      value: fc.integer({ min: 0, max: 255 }),
    }),
    fc.record({
      kind: fc.constant('u32' as const),
      at: fc.nat(),
      value: fc.constantFrom(...hostile),
    }),
    fc.record({ kind: fc.constant('u64max' as const), at: fc.nat(), value: fc.constant(0) }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat(), value: fc.constant(0) }),
  );
  await fc.assert(
    fc.asyncProperty(
      fc.nat({ max: seeds.length - 1 }),
      fc.array(mutation, { minLength: 1, maxLength: 8 }),
      fc.boolean(),
      async (si, muts, hot) => {
        const seed = seeds[si]!;
        let buf = Buffer.from(seed);
        const ranges = options.hotRanges ?? [];
        for (const m of muts) {
          let at = m.at % buf.length;
          const range = ranges[m.at % Math.max(1, ranges.length)];
          if (hot && range !== undefined) at = range[0] + (m.at % Math.max(1, range[1] - range[0]));
          if (m.kind === 'byte') buf[at] = m.value;
          else if (m.kind === 'u32' && at + 4 <= buf.length) buf.writeUInt32LE(m.value >>> 0, at);
          else if (m.kind === 'u64max' && at + 8 <= buf.length) buf.fill(0xff, at, at + 8);
          else if (m.kind === 'truncate') buf = buf.subarray(0, Math.max(0, at));
        }
        options.fixup?.(buf);
        stats.runs++;
        try {
          const img = await openImageSource(new BufferSource(buf, 'fuzz'));
          try {
            await exerciseImage(img, options.maxReadBytes ?? 64 * 1024 * 1024);
            stats.opened++;
          } finally {
            await img.close();
          }
        } catch (error) {
          if (!isFerryError(error)) throw error;
          stats.refused++;
        }
      },
    ),
    {
      interruptAfterTimeLimit: (options.seconds ?? FUZZ_SECONDS) * 1000,
      numRuns: 1_000_000,
      seed: Number(process.env.FERRY_FUZZ_SEED ?? Date.now() % 2 ** 31),
    },
  );
  return stats;
}
