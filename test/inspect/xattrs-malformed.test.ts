import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openImage } from '../../src/disk/index.js';
import { isFerryError } from '../../src/errors/index.js';
import { openExt } from '../../src/inspect/fs/ext/index.js';
import type { FsDriver } from '../../src/inspect/fs/fs-driver.js';
import { FsTree } from '../../src/inspect/fs/fs-tree.js';
import { openXfs } from '../../src/inspect/fs/xfs/index.js';
import { volumeOf } from '../../src/inspect/volume.js';
import { haveToolsFor, xattrCases } from '../corpus/xattr-malformed.js';
import { withTempDir } from '../helpers/qemu.js';

/** Each hostile attribute structure is refused with its code and a "Cannot …" message, quickly. */
describe('malformed extended attributes', () => {
  for (const c of xattrCases) {
    it(c.name, { skip: haveToolsFor(c) ? false : 'filesystem tools not installed' }, async () => {
      await withTempDir(async (dir) => {
        const img = await c.build(dir);
        const image = await openImage(img);
        try {
          const volume = volumeOf(image, 0, image.virtualSize);
          const driver = (
            c.fs === 'ext4' ? await openExt(volume) : await openXfs(volume)
          ) as FsDriver | null;
          assert.ok(driver !== null);
          const tree = new FsTree(driver);
          // The rest of the node still reads: only its attributes are refused.
          assert.ok((await tree.lstat(c.path)) !== null);
          const started = performance.now();
          await assert.rejects(tree.readXattrs(c.path), (e: unknown) => {
            assert.ok(isFerryError(e), `expected a FerryError, got ${String(e)}`);
            assert.equal(e.code, c.expect, e.message);
            assert.match(e.message, /^Cannot read the extended attributes of /);
            return true;
          });
          assert.ok(performance.now() - started < 5000, 'took longer than 5 s');
        } finally {
          await image.close();
        }
      });
    });
  }
});
