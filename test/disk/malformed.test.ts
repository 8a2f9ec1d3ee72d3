import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FileSource, openImageSource } from '../../src/disk/index.js';
import { isFerryError } from '../../src/errors/index.js';
import { MALFORMED } from '../corpus/index.js';
import { exerciseImage } from '../helpers/exercise.js';
import { withTempDir } from '../helpers/qemu.js';

/** Each malformed case must be refused with its code, within the time and memory caps. */
for (const [format, cases] of Object.entries(MALFORMED)) {
  describe(`malformed ${format}`, () => {
    for (const c of cases) {
      it(c.name, async () => {
        await withTempDir(async (dir) => {
          const names = Object.keys(c.files);
          for (const n of names) await writeFile(join(dir, n), c.files[n]!);
          const first = names[0]!;
          const siblings: string[] = [];
          const expected = typeof c.expect === 'string' ? [c.expect] : c.expect;
          const started = performance.now();
          const rssBefore = process.memoryUsage().rss;
          const source = await FileSource.open(join(dir, first));
          try {
            await assert.rejects(
              (async () => {
                const img = await openImageSource(source, {
                  ...c.options,
                  openSibling: async (name) => {
                    siblings.push(name);
                    if (!names.includes(name))
                      throw new Error(`opened a file outside the case: ${name}`);
                    return FileSource.open(join(dir, name));
                  },
                });
                try {
                  await exerciseImage(img);
                } finally {
                  await img.close();
                }
              })(),
              (e: unknown) => {
                assert.ok(isFerryError(e), `expected a FerryError, got ${String(e)}`);
                assert.ok(
                  expected.includes(e.code),
                  `expected ${expected.join('|')}, got ${e.code}: ${e.message}`,
                );
                return true;
              },
            );
          } finally {
            await source.close();
          }
          assert.ok(performance.now() - started < 10_000, 'took longer than 10 s');
          assert.ok(
            process.memoryUsage().rss - rssBefore < 256 * 1024 * 1024,
            'memory grew by more than 256 MiB',
          );
          for (const s of siblings) assert.ok(names.includes(s));
        });
      });
    }
  });
}
