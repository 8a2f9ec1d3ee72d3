import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isFerryError } from '../../src/errors/index.js';
import { openExt } from '../../src/inspect/fs/ext/index.js';
import { bufferVolume } from '../../src/inspect/volume.js';
import { extCases, haveExtTools, walkFs } from '../corpus/ext.js';
import { withTempDir } from '../helpers/qemu.js';

/** Each hostile ext image must be refused with its code, quickly, with bounded memory. */
describe('malformed ext', {
  skip: haveExtTools ? false : 'e2fsprogs (mke2fs, debugfs) not installed',
}, () => {
  for (const c of extCases) {
    it(c.name, async () => {
      await withTempDir(async (dir) => {
        const img = await c.build(dir);
        const started = performance.now();
        const rssBefore = process.memoryUsage().rss;
        await assert.rejects(
          (async () => {
            const driver = await openExt(bufferVolume(img));
            assert.ok(driver !== null, 'the image lost its ext magic');
            await walkFs(driver);
          })(),
          (e: unknown) => {
            assert.ok(isFerryError(e), `expected a FerryError, got ${String(e)}`);
            assert.ok(
              c.expect.includes(e.code),
              `expected ${c.expect.join('|')}, got ${e.code}: ${e.message}`,
            );
            return true;
          },
        );
        assert.ok(performance.now() - started < 10_000, 'took longer than 10 s');
        assert.ok(
          process.memoryUsage().rss - rssBefore < 256 * 1024 * 1024,
          'memory grew by more than 256 MiB',
        );
      });
    });
  }
});
