import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { it } from 'node:test';
import fc from 'fast-check';
import { isFerryError } from '../../src/errors/index.js';
import { memberPath } from '../../src/store/index.js';
import { readTar } from '../../src/store/tar-reader.js';
import { FUZZ_SECONDS } from '../helpers/fuzz.js';
import { withTempDir } from '../helpers/qemu.js';

/** The archive in two chunks, split inside a header, as a stream would deliver it. */
async function* chunks(buf: Buffer): AsyncGenerator<Buffer> {
  yield buf.subarray(0, 700);
  yield buf.subarray(700);
}

it('tar reader survives mutated GNU and pax archives with only coded errors', async () => {
  await withTempDir(async (dir) => {
    const src = join(dir, 'src');
    await mkdir(join(src, 'd'.repeat(110)), { recursive: true });
    await writeFile(join(src, 'd'.repeat(110), 'e'.repeat(120)), 'x'.repeat(3000));
    await writeFile(join(src, 'small'), 'hello');
    await symlink('small', join(src, 'link'));
    execFileSync('ln', [join(src, 'small'), join(src, 'hard')]);
    const seeds: Buffer[] = [];
    for (const format of ['gnu', 'pax', 'ustar']) {
      const t = join(dir, `${format}.tar`);
      execFileSync('tar', [
        '-C',
        src,
        `--format=${format}`,
        '-cf',
        t,
        ...(format === 'ustar' ? ['small', 'link', 'hard'] : ['.']),
      ]);
      seeds.push(await readFile(t));
    }
    let runs = 0;
    let ok = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: seeds.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 6,
        }),
        fc.boolean(),
        fc.option(fc.nat()),
        async (si, flips, header, cut) => {
          runs++;
          let buf = Buffer.from(seeds[si]!);
          // Half the mutations land in the first headers, where the parser decides things.
          for (const [at, v] of flips)
            buf[header ? at % Math.min(buf.length, 2048) : at % buf.length] = v;
          if (cut !== null) buf = buf.subarray(0, cut % buf.length);
          try {
            await readTar(chunks(buf), async (e, body) => {
              for await (const _ of body) {
                // consume
              }
              try {
                memberPath(e.path);
              } catch (error) {
                if (!isFerryError(error)) throw error;
              }
            });
            ok++;
          } catch (error) {
            if (!isFerryError(error)) throw error;
          }
        },
      ),
      { interruptAfterTimeLimit: FUZZ_SECONDS * 1000, numRuns: 1_000_000 },
    );
    assert.ok(runs > 50, `only ${runs} runs`);
    assert.ok(
      ok > 0 && ok < runs,
      `${ok} of ${runs} archives read: the fuzzer is not reaching both outcomes`,
    );
  });
});
