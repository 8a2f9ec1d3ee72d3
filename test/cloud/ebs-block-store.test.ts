import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { describe, it, mock } from 'node:test';
import { BodyPool } from '../../src/cloud/body-pool.js';
import { BlockStore, blockDigest } from '../../src/cloud/ebs/block-store.js';
import { EbsEngine } from '../../src/cloud/ebs/engine.js';
import { block, CTX, fakeClock, sha256b64 } from '../helpers/ebs.js';
import { withTempDir } from '../helpers/qemu.js';

/** Counts files opened under `dir` with open flags `flags` ('wx': a new block, 'r': a read) while `fn` runs. */
async function countOpens<T>(
  dir: string,
  flags: string,
  fn: () => Promise<T>,
): Promise<[T, number]> {
  let opens = 0;
  // The CommonJS object behind node:fs/promises (the ESM namespace cannot be patched).
  const cjs = createRequire(import.meta.url)('node:fs/promises') as typeof fsp;
  const real = cjs.open;
  const m = mock.method(cjs, 'open', (path: string, f?: string, mode?: number) => {
    if (String(path).startsWith(dir) && f === flags) opens++;
    return real(path, f, mode);
  });
  syncBuiltinESMExports();
  try {
    return [await fn(), opens];
  } finally {
    m.mock.restore();
    syncBuiltinESMExports();
  }
}
const countWrites = <T>(dir: string, fn: () => Promise<T>) => countOpens(dir, 'wx', fn);
const countReads = <T>(dir: string, fn: () => Promise<T>) => countOpens(dir, 'r', fn);

describe('BlockStore', () => {
  it('knows its blocks from open on, writes a new block once however many put it at once', async () => {
    await withTempDir(async (dir) => {
      const store = new BlockStore(dir);
      await store.open();
      const a = block(1);
      const d = blockDigest(a);
      assert.equal(store.has(d), false);
      const [dirs, writes] = await countWrites(join(dir, 'tmp'), () =>
        Promise.all(Array.from({ length: 8 }, () => store.put(d, a))),
      );
      assert.equal(writes, 1, 'eight puts of one new block: one file written');
      // Every put that came before the directory fsync is told to sync it.
      assert.ok(dirs.every((x) => x === store.shardDir(d)));
      assert.ok(store.has(d));
      assert.ok((await store.read(d)).equals(a));
      store.synced(d);
      const [again, writesAgain] = await countWrites(join(dir, 'tmp'), () => store.put(d, a));
      assert.equal(again, null, 'stored and synced: nothing to do');
      assert.equal(writesAgain, 0);

      // A second store over the directory lists the block at open.
      const reopened = new BlockStore(dir);
      assert.equal(reopened.has(d), false);
      await reopened.open();
      assert.ok(reopened.has(d));
      assert.equal(reopened.lastPut(d), 0);
      assert.deepEqual(await reopened.list(), [d]);

      // Removed, then put again: stored again.
      await reopened.remove(d);
      assert.equal(reopened.has(d), false);
      await assert.rejects(reopened.read(d));
      assert.equal(await reopened.put(d, a), reopened.shardDir(d));
      assert.ok((await reopened.read(d)).equals(a));
    });
  });

  it('garbage collection spares a block put within its grace period, by the engine clock', async () => {
    await withTempDir(async (dir) => {
      const clock = fakeClock(Date.now());
      const engine = await EbsEngine.open(dir, { now: clock.now });
      try {
        const s = await engine.startSnapshot(CTX, { volumeSize: 1 });
        const data = block(7);
        await engine.putSnapshotBlock(CTX, {
          snapshotId: s.snapshotId,
          blockIndex: 0,
          data,
          dataLength: data.length,
          checksum: sha256b64(data),
          checksumAlgorithm: 'SHA256',
        });
        await engine.deleteSnapshot(CTX, s.snapshotId);
        // Unreferenced and its file old: only the recent put keeps it.
        const path = join(dir, 'blocks', blockDigest(data).slice(0, 2), blockDigest(data));
        const old = new Date(Date.now() - 3 * 3600_000);
        await fsp.utimes(path, old, old);
        assert.deepEqual(await engine.collectGarbage(3600), { removed: 0, kept: 1 });
        clock.advance(2 * 3600_000);
        assert.deepEqual(await engine.collectGarbage(3600), { removed: 1, kept: 0 });
        await assert.rejects(fsp.stat(path));
        // A put after the collection stores the block again.
        const t = await engine.startSnapshot(CTX, { volumeSize: 1 });
        await engine.putSnapshotBlock(CTX, {
          snapshotId: t.snapshotId,
          blockIndex: 3,
          data,
          dataLength: data.length,
          checksum: sha256b64(data),
          checksumAlgorithm: 'SHA256',
        });
        assert.ok((await fsp.readFile(path)).equals(data));
      } finally {
        await engine.close();
      }
    });
  });
});

describe('BlockStore.holds', () => {
  it('proves a stored block by its bytes, from its copy or from disk, and nothing else', async () => {
    await withTempDir(async (dir) => {
      // Copies of the last 2 blocks written.
      const store = new BlockStore(dir, Date.now, 2);
      await store.open();
      const [a, b, c] = [block(1), block(2), block(3)];
      const [da, db, dc] = [a, b, c].map(blockDigest) as [string, string, string];
      assert.equal(await store.holds(da, a), false, 'not stored');
      const writing = store.put(da, a);
      // Being written: the copy answers (the caller's buffer may be reused meanwhile).
      const callers = Buffer.from(a);
      callers.fill(0);
      assert.equal(await store.holds(da, a), true);
      await writing;
      await store.put(db, b);
      await store.put(dc, c);
      // a's copy was evicted (2 kept): read back from disk.
      const [yes, reads] = await countReads(dir, () => store.holds(da, a));
      assert.equal(yes, true);
      assert.equal(reads, 1, "a's copy is gone: one read of its file");
      const [yesC, readsC] = await countReads(dir, () => store.holds(dc, c));
      assert.equal(yesC, true);
      assert.equal(readsC, 0, "c's copy answers without a read");
      // Other bytes under a stored block's name: refused, from a copy and from disk.
      const forged = Buffer.from(c);
      forged.writeUInt8(forged.readUInt8(forged.length - 1) ^ 1, forged.length - 1);
      assert.equal(await store.holds(dc, forged), false);
      const forgedA = Buffer.from(a);
      forgedA.writeUInt8(forgedA.readUInt8(0) ^ 0x80, 0);
      assert.equal(await store.holds(da, forgedA), false);
      assert.equal(await store.holds(da, a.subarray(1)), false, 'a short block');
      // Removed: no longer held, whatever the bytes.
      await store.remove(dc);
      await store.remove(da);
      assert.equal(await store.holds(dc, c), false);
      assert.equal(await store.holds(da, a), false);
      // A damaged file is not a proof: false, and the caller hashes instead.
      await fsp.writeFile(store.path(db), b.subarray(0, 1000));
      const reopened = new BlockStore(dir, Date.now, 0);
      await reopened.open();
      assert.equal(await reopened.holds(db, b), false);
    });
  });
});

describe('BodyPool', () => {
  it('reuses buffers of its size, keeps at most its cap, and drops others', () => {
    const pool = new BodyPool(1024, 2);
    const a = pool.take();
    const b = pool.take();
    const c = pool.take();
    assert.equal(a.length, 1024);
    assert.notEqual(a.buffer, b.buffer);
    pool.give(a);
    pool.give(b);
    pool.give(c);
    assert.equal(pool.idle, 2, 'the third is left to the GC');
    const again = pool.take();
    assert.ok(again === b || again === a);
    assert.equal(pool.idle, 1);
    pool.give(Buffer.alloc(10));
    pool.give(Buffer.alloc(2048).subarray(1024));
    assert.equal(pool.idle, 1, 'another size, or a view into a larger buffer, is not kept');
  });
});
