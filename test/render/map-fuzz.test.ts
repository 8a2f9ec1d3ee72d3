import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { FerryError, isFerryError } from '../../src/errors/index.js';
import { checkChunks } from '../../src/render/chunk-digest.js';
import { checkDiskMap } from '../../src/render/disk/disk-map.js';
import { planExt4 } from '../../src/render/ext4/plan-ext4.js';
import { checkExt4Map } from '../../src/render/index.js';
import { planXfs } from '../../src/render/xfs/plan-xfs.js';
import { checkXfsMap } from '../../src/render/xfs/xfs-map.js';
import type { Manifest } from '../../src/store/index.js';
import { FUZZ_SECONDS } from '../helpers/fuzz.js';

const hash = (c: string): string => c.repeat(128);
const manifest: Manifest = {
  version: 1,
  entries: [
    { path: '', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: '0', size: 0 },
    {
      path: 'a',
      type: 'file',
      mode: 0o644,
      uid: 0,
      gid: 0,
      mtime: '1',
      size: 9000,
      hash: hash('a'),
    },
    { path: 'd', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: '2', size: 0 },
    {
      path: 'd/b',
      type: 'file',
      mode: 0o600,
      uid: 1,
      gid: 1,
      mtime: '3',
      size: 5,
      hash: hash('b'),
    },
    { path: 'l', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: '4', size: 0, target: 'a' },
  ],
};

/** Values that break naive checks: wrong types, out-of-range numbers, huge arrays. */
const hostile = fc.oneof(
  fc.constantFrom(null, true, '', 'x', -1, 0, 1, 2 ** 32, 2 ** 53, Number.NaN, 1.5, {}, []),
  fc.array(fc.integer(), { maxLength: 5 }),
  fc.string({ maxLength: 8 }),
);

/** Every path of keys and indexes in a JSON value (capped), for choosing where to mutate. */
function paths(v: unknown, prefix: (string | number)[] = [], out: (string | number)[][] = []) {
  if (out.length > 4000) return out;
  out.push(prefix);
  if (Array.isArray(v)) {
    for (const [i, x] of v.entries()) paths(x, [...prefix, i], out);
  } else if (v !== null && typeof v === 'object')
    for (const [k, x] of Object.entries(v)) paths(x, [...prefix, k], out);
  return out;
}

function setAt(root: unknown, path: (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  const copy = structuredClone(root) as Record<string | number, unknown>;
  let at = copy;
  for (const k of path.slice(0, -1)) at = at[k] as Record<string | number, unknown>;
  at[path[path.length - 1]!] = value;
  return copy;
}

/** Mutants of `seed` given to `check` either pass or fail with a FerryError, never anything else. */
function fuzzChecker(seed: unknown, check: (raw: unknown) => unknown): void {
  const all = paths(seed);
  const deadline = Date.now() + FUZZ_SECONDS * 1000;
  fc.assert(
    fc.property(fc.nat(all.length - 1), hostile, (i, value) => {
      if (Date.now() > deadline) return;
      const mutant = setAt(seed, all[i]!, value);
      try {
        check(mutant);
      } catch (error) {
        assert.ok(isFerryError(error), `a non-FerryError escaped: ${String(error)}`);
        assert.equal((error as { code: string }).code, 'FERRY_RENDER_INPUT');
      }
    }),
    { numRuns: 100_000, interruptAfterTimeLimit: FUZZ_SECONDS * 1000 },
  );
}

describe('render block maps (fuzz)', () => {
  it('the ext4 map checker refuses hostile fields with FERRY_RENDER_INPUT only', () => {
    const seed = JSON.parse(JSON.stringify(planExt4(manifest, { revision: 'r' }).map));
    assert.doesNotThrow(() => checkExt4Map(seed));
    fuzzChecker(seed, checkExt4Map);
  });

  it('the XFS map checker refuses hostile fields with FERRY_RENDER_INPUT only', () => {
    const seed = JSON.parse(JSON.stringify(planXfs(manifest, { revision: 'r' }).map));
    assert.doesNotThrow(() => checkXfsMap(seed));
    fuzzChecker(seed, checkXfsMap);
  });

  it('the disk map and chunk digest checkers refuse hostile fields with FERRY_RENDER_INPUT only', () => {
    const fs = JSON.parse(JSON.stringify(planExt4(manifest, { revision: 'r' }).map));
    const seed = {
      format: 'ferry-disk-map',
      version: 1,
      revision: 'r',
      table: 'gpt',
      firmware: 'both',
      totalSectors: 1_000_000,
      diskGuid: 'ab'.repeat(16),
      partitions: [
        { role: 'esp', firstLba: 2048, lastLba: 133119, guid: 'cd'.repeat(16) },
        { role: 'root', firstLba: 133120, lastLba: 997375, guid: 'ef'.repeat(16) },
      ],
      fs,
      chunkDigests: {
        size: 524288,
        sha256: { '0': `${'A'.repeat(43)}=`, '7': `${'B'.repeat(43)}=` },
      },
    };
    assert.doesNotThrow(() => checkDiskMap(seed, 'ext4'));
    fuzzChecker(seed, (raw) => {
      const m = checkDiskMap(raw, 'ext4');
      checkChunks(
        (raw as { chunkDigests?: unknown }).chunkDigests,
        m.totalSectors * 512,
        (reason) => new FerryError('FERRY_RENDER_INPUT', reason),
      );
    });
  });
});
