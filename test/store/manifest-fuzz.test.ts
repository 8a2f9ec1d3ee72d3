import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import { isFerryError } from '../../src/errors/index.js';
import { canonicalManifest, parseManifest } from '../../src/store/index.js';
import { FUZZ_SECONDS } from '../helpers/fuzz.js';

const SEED = {
  version: 1,
  entries: [
    { path: '', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: '1', size: 0 },
    { path: 'bin', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: '2', size: 0 },
    {
      path: 'bin/sh',
      type: 'file',
      mode: 0o755,
      uid: 0,
      gid: 0,
      mtime: '3',
      size: 9,
      hash: 'c'.repeat(128),
    },
    {
      path: 'bin/sh2',
      type: 'file',
      mode: 0o755,
      uid: 0,
      gid: 0,
      mtime: '3',
      size: 9,
      hash: 'c'.repeat(128),
      link: 'bin/sh',
    },
    { path: 'dev', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: '2', size: 0 },
    {
      path: 'dev/null',
      type: 'char',
      mode: 0o666,
      uid: 0,
      gid: 0,
      mtime: '2',
      size: 0,
      rdev: { major: 1, minor: 3 },
    },
    {
      path: 'lib',
      type: 'symlink',
      mode: 0o777,
      uid: 0,
      gid: 0,
      mtime: '2',
      size: 0,
      target: 'usr/lib',
    },
  ],
};

it('manifest parser survives mutated manifests with only coded errors, and what it accepts is canonical', async () => {
  const text = JSON.stringify(SEED);
  // Valid JSON mutations (values swapped for hostile ones) and raw byte mutations.
  const hostile = fc.oneof(
    fc.constantFrom(
      '..',
      '/',
      '',
      'a/../b',
      '\0',
      -1,
      2 ** 53,
      1e308,
      null,
      [],
      {},
      'x'.repeat(5000),
      true,
    ),
    fc.string(),
    fc.integer(),
  );
  let runs = 0;
  let accepted = 0;
  await fc.assert(
    fc.property(
      fc.nat({ max: SEED.entries.length - 1 }),
      fc.constantFrom(
        'path',
        'type',
        'mode',
        'uid',
        'mtime',
        'size',
        'hash',
        'link',
        'target',
        'rdev',
      ),
      hostile,
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
      (i, field, value, flips) => {
        runs++;
        const m = JSON.parse(text) as { entries: Array<Record<string, unknown>> };
        m.entries[i]![field] = value;
        const bytes = Buffer.from(flips.length % 2 === 0 ? JSON.stringify(m) : text);
        for (const [at, v] of flips) bytes[at % bytes.length] = v;
        try {
          const { manifest, id } = parseManifest(bytes);
          accepted++;
          // Anything accepted re-parses to the same id from its canonical form.
          assert.equal(parseManifest(canonicalManifest(manifest)).id, id);
        } catch (error) {
          if (!isFerryError(error, 'FERRY_STORE_MANIFEST_INVALID')) throw error;
        }
      },
    ),
    { interruptAfterTimeLimit: FUZZ_SECONDS * 1000, numRuns: 1_000_000 },
  );
  assert.ok(runs > 100, `only ${runs} runs`);
  assert.ok(
    accepted > 0 && accepted < runs,
    `${accepted} of ${runs} accepted: the fuzzer is not reaching both outcomes`,
  );
});
