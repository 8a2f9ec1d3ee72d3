import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it, mock } from 'node:test';
import { BodyPool } from '../../src/cloud/body-pool.js';
import { BlockPack, SLOT_HEADER, SLOT_SIZE } from '../../src/cloud/ebs/block-pack.js';
import { BlockStore, blockDigest } from '../../src/cloud/ebs/block-store.js';
import { EbsEngine } from '../../src/cloud/ebs/engine.js';
import { block, CTX, fakeClock, sha256b64 } from '../helpers/ebs.js';
import { withTempDir } from '../helpers/qemu.js';

/** Counts calls of BlockPack's `method` while `fn` runs. */
async function countCalls<T>(
  method: 'readInto' | 'write' | 'sync',
  fn: () => Promise<T>,
): Promise<[T, number]> {
  const m = mock.method(BlockPack.prototype, method);
  try {
    return [await fn(), m.mock.callCount()];
  } finally {
    m.mock.restore();
  }
}

/** Counts fdatasync calls of every file handle while `fn` runs. */
async function countDatasyncs<T>(dir: string, fn: () => Promise<T>): Promise<[T, number]> {
  const fh = await fsp.open(join(dir, 'probe'), 'w');
  const proto = Object.getPrototypeOf(fh) as { datasync: () => Promise<void> };
  await fh.close();
  const m = mock.method(proto, 'datasync');
  try {
    return [await fn(), m.mock.callCount()];
  } finally {
    m.mock.restore();
  }
}

const packsOf = async (dir: string) => (await fsp.readdir(join(dir, 'packs'))).sort();

describe('BlockStore', () => {
  it('knows its blocks from open on, writes a new block once however many put it at once', async () => {
    await withTempDir(async (dir) => {
      const clock = fakeClock(Date.UTC(2026, 5, 1));
      const store = new BlockStore(dir, clock.now);
      await store.open();
      const a = block(1);
      const d = blockDigest(a);
      assert.equal(store.has(d), false);
      const [, writes] = await countCalls('write', () =>
        Promise.all(Array.from({ length: 8 }, () => store.put(d, a))),
      );
      assert.equal(writes, 1, 'eight puts of one new block: one slot written');
      assert.ok(store.has(d));
      assert.ok((await store.read(d)).equals(a));
      const [, writesAgain] = await countCalls('write', () => store.put(d, a));
      assert.equal(writesAgain, 0, 'stored already: nothing written');
      const [pack] = await store.packFiles();
      assert.equal(pack?.bytes, SLOT_SIZE, 'one slot: a 4 KiB header and the block');
      const put = clock.now();
      clock.advance(60_000);
      await store.close();

      // A second store over the directory lists the block at open, with its put time.
      const reopened = new BlockStore(dir, clock.now);
      assert.equal(reopened.has(d), false);
      await reopened.open();
      assert.ok(reopened.has(d));
      assert.equal(reopened.lastPut(d), put);
      assert.deepEqual(await reopened.list(), [d]);
      assert.ok((await reopened.read(d)).equals(a));

      // Removed, then put again: stored again.
      await reopened.remove(d);
      assert.equal(reopened.has(d), false);
      await assert.rejects(reopened.read(d));
      await reopened.put(d, a);
      assert.ok((await reopened.read(d)).equals(a));
      await reopened.close();
    });
  });

  it('makes the puts of a batch durable with one fdatasync, not one each', async () => {
    await withTempDir(async (dir) => {
      const store = new BlockStore(dir);
      await store.open();
      const blocks = Array.from({ length: 32 }, (_, i) => block(100 + i));
      const [, syncs] = await countDatasyncs(dir, () =>
        Promise.all(blocks.map((b) => store.put(blockDigest(b), b))),
      );
      assert.ok(syncs >= 1, 'the puts were made durable');
      assert.ok(syncs < blocks.length / 2, `${syncs} fdatasyncs for ${blocks.length} puts`);
      for (const b of blocks) assert.ok((await store.read(blockDigest(b))).equals(b));
      await store.close();
    });
  });

  it('stores and recovers the same with its packs written buffered (FERRY_NO_DIRECT_IO=1)', async () => {
    await withTempDir(async (dir) => {
      const saved = process.env.FERRY_NO_DIRECT_IO;
      process.env.FERRY_NO_DIRECT_IO = '1';
      try {
        const store = new BlockStore(dir, Date.now, 0, 4);
        await store.open();
        const blocks = Array.from({ length: 6 }, (_, i) => block(300 + i));
        const [, syncs] = await countDatasyncs(dir, () =>
          Promise.all(blocks.map((b) => store.put(blockDigest(b), b))),
        );
        assert.ok(syncs >= 1, 'the puts were made durable');
        await store.close();
        const reopened = new BlockStore(dir, Date.now, 0, 4);
        await reopened.open();
        for (const b of blocks) assert.ok((await reopened.read(blockDigest(b))).equals(b));
        await reopened.close();
      } finally {
        if (saved === undefined) delete process.env.FERRY_NO_DIRECT_IO;
        else process.env.FERRY_NO_DIRECT_IO = saved;
      }
    });
  });

  it('fills packs of its size, seals them, and the next open resumes the last one', async () => {
    await withTempDir(async (dir) => {
      const store = new BlockStore(dir, Date.now, 0, 4);
      await store.open();
      const blocks = Array.from({ length: 10 }, (_, i) => block(200 + i));
      for (const b of blocks) await store.put(blockDigest(b), b);
      assert.deepEqual(
        (await store.packFiles()).map((p) => [p.bytes / SLOT_SIZE, p.sealed]),
        [
          [4, true],
          [4, true],
          [2, false],
        ],
      );
      await store.close();
      assert.deepEqual(await packsOf(dir), [
        '00000001.pack',
        '00000001.sealed',
        '00000002.pack',
        '00000002.sealed',
        '00000003.pack',
        '00000003.sealed',
      ]);
      const again = new BlockStore(dir, Date.now, 0, 4);
      await again.open();
      assert.equal((await again.list()).length, 10);
      for (const b of blocks) assert.ok((await again.read(blockDigest(b))).equals(b));
      // The last pack had room: it takes the next blocks, and is unsealed meanwhile.
      const more = [block(300), block(301), block(302)];
      await again.put(blockDigest(more[0]!), more[0]!);
      assert.ok(!(await packsOf(dir)).includes('00000003.sealed'));
      for (const b of more.slice(1)) await again.put(blockDigest(b), b);
      assert.deepEqual(
        (await again.packFiles()).map((p) => p.bytes / SLOT_SIZE),
        [4, 4, 4, 1],
      );
      await again.close();
    });
  });

  it('after a crash, keeps the whole blocks of the unsealed pack and drops torn or damaged ones', async () => {
    await withTempDir(async (dir) => {
      const store = new BlockStore(dir, Date.now, 0);
      await store.open();
      const blocks = Array.from({ length: 6 }, (_, i) => block(400 + i));
      for (const b of blocks) await store.put(blockDigest(b), b);
      const [pack] = await store.packFiles();
      // No close(): the pack stays unsealed, as a kill -9 leaves it.
      const damaged = blockDigest(blocks[2]!);
      const badHeader = blockDigest(blocks[4]!);
      const at = store.location(damaged)!;
      const fh = await fsp.open(pack!.path, 'r+');
      try {
        await fh.write(Buffer.alloc(4096, 0x5a), 0, 4096, at.offset + 100_000);
        // A header whose CRC no longer matches.
        const h = store.location(badHeader)!.offset - SLOT_HEADER;
        await fh.write(Buffer.from([0xff]), 0, 1, h + 45);
        // A torn slot at the end: half a header and some data of a put never acknowledged.
        await fh.write(Buffer.alloc(3000, 1), 0, 3000, 6 * SLOT_SIZE);
      } finally {
        await fh.close();
      }
      const after = new BlockStore(dir, Date.now, 0);
      await after.open();
      const listed = new Set(await after.list());
      assert.equal(listed.size, 4);
      assert.ok(!listed.has(damaged), 'a block that does not hash to its name is dropped');
      assert.ok(!listed.has(badHeader), 'a header that fails its CRC is dropped');
      for (const b of blocks) {
        const d = blockDigest(b);
        if (listed.has(d)) assert.ok((await after.read(d)).equals(b));
      }
      // Checked, so sealed; a put of the dropped block stores it again, whole.
      assert.ok((await packsOf(dir)).includes('00000001.sealed'));
      await after.put(damaged, blocks[2]!);
      assert.ok((await after.read(damaged)).equals(blocks[2]!));
      await after.close();
      const third = new BlockStore(dir, Date.now, 0);
      await third.open();
      assert.equal((await third.list()).length, 5);
      assert.ok((await third.read(damaged)).equals(blocks[2]!));
      await third.close();
    });
  });

  it('deletes an emptied pack and compacts a mostly empty one, keeping what is left', async () => {
    await withTempDir(async (dir) => {
      const store = new BlockStore(dir, Date.now, 0, 4);
      await store.open();
      const blocks = Array.from({ length: 12 }, (_, i) => block(500 + i));
      const ds = blocks.map(blockDigest);
      for (const b of blocks) await store.put(blockDigest(b), b);
      // Pack 1 emptied: deleted at the last removal.
      for (const d of ds.slice(0, 4)) await store.remove(d);
      assert.ok(!(await packsOf(dir)).includes('00000001.pack'));
      // Pack 2 left with one block of four: compact() moves it and deletes the pack.
      for (const d of ds.slice(4, 7)) await store.remove(d);
      assert.deepEqual(await store.compact(), { moved: 1, packsRemoved: 1 });
      assert.ok(!(await packsOf(dir)).includes('00000002.pack'));
      assert.ok((await store.read(ds[7]!)).equals(blocks[7]!));
      // Pack 3 is half full: left alone.
      await store.remove(ds[8]!);
      await store.remove(ds[9]!);
      assert.deepEqual(await store.compact(), { moved: 0, packsRemoved: 0 });
      await store.close();
      const again = new BlockStore(dir, Date.now, 0, 4);
      await again.open();
      const left = [ds[7]!, ds[10]!, ds[11]!];
      // Removals from a pack that is still there come back at open (garbage collection removes them again).
      const listed = await again.list();
      for (const d of left) assert.ok(listed.includes(d));
      for (const d of ds.slice(0, 7)) assert.ok(!listed.includes(d));
      for (const i of [7, 10, 11]) assert.ok((await again.read(ds[i]!)).equals(blocks[i]!));
      await again.close();
    });
  });

  it('a crash in the middle of a compaction loses no block', async () => {
    await withTempDir(async (dir) => {
      const store = new BlockStore(dir, Date.now, 0, 4);
      await store.open();
      const blocks = Array.from({ length: 5 }, (_, i) => block(700 + i));
      const ds = blocks.map(blockDigest);
      for (const b of blocks) await store.put(blockDigest(b), b);
      for (const d of ds.slice(0, 3)) await store.remove(d);
      // The copy is made, then the process dies before the old pack is deleted.
      const drop = mock.method(BlockPack.prototype, 'drop', () => {
        throw new Error('killed');
      });
      try {
        await assert.rejects(store.compact(), /killed/);
      } finally {
        drop.mock.restore();
      }
      const after = new BlockStore(dir, Date.now, 0, 4);
      await after.open();
      const listed = await after.list();
      // The moved block is in both packs: listed once, whole.
      assert.equal(listed.filter((d) => d === ds[3]).length, 1);
      for (const i of [3, 4]) assert.ok((await after.read(ds[i]!)).equals(blocks[i]!));
      // The next collection removes the three again, then compacts the pack.
      for (const d of ds.slice(0, 3)) await after.remove(d);
      assert.deepEqual(await after.compact(), { moved: 1, packsRemoved: 1 });
      assert.ok((await after.read(ds[3]!)).equals(blocks[3]!));
      await after.close();
      const third = new BlockStore(dir, Date.now, 0, 4);
      await third.open();
      assert.deepEqual(await third.list(), [ds[3]!, ds[4]!].sort());
      await third.close();
    });
  });

  it('reads, proves and removes the blocks of a data directory from before packs', async () => {
    await withTempDir(async (dir) => {
      const a = block(600);
      const d = blockDigest(a);
      await fsp.mkdir(join(dir, 'blocks', d.slice(0, 2)), { recursive: true });
      const file = join(dir, 'blocks', d.slice(0, 2), d);
      await fsp.writeFile(file, a);
      const store = new BlockStore(dir, Date.now, 0);
      await store.open();
      assert.deepEqual(await store.list(), [d]);
      assert.equal(store.lastPut(d), 0);
      assert.ok((await store.read(d)).equals(a));
      assert.equal(await store.holds(d, a), true);
      await store.remove(d);
      await assert.rejects(fsp.stat(file));
      assert.deepEqual(await packsOf(dir), [], 'nothing was written');
      await store.close();
    });
  });

  it('garbage collection spares a block put within its grace period, by the engine clock', async () => {
    await withTempDir(async (dir) => {
      const clock = fakeClock(Date.now());
      const engine = await EbsEngine.open(dir, { now: clock.now });
      try {
        const s = await engine.startSnapshot(CTX, { volumeSize: 1 });
        const data = block(7);
        const put = (snapshotId: string, blockIndex: number) =>
          engine.putSnapshotBlock(CTX, {
            snapshotId,
            blockIndex,
            data,
            dataLength: data.length,
            checksum: sha256b64(data),
            checksumAlgorithm: 'SHA256',
          });
        await put(s.snapshotId, 0);
        await engine.deleteSnapshot(CTX, s.snapshotId);
        // Unreferenced: only the recent put keeps it.
        assert.deepEqual(await engine.collectGarbage(3600), { removed: 0, kept: 1 });
        clock.advance(2 * 3600_000);
        assert.deepEqual(await engine.collectGarbage(3600), { removed: 1, kept: 0 });
        // A put after the collection stores the block again.
        const t = await engine.startSnapshot(CTX, { volumeSize: 1 });
        await put(t.snapshotId, 3);
        assert.deepEqual(await engine.collectGarbage(3600), { removed: 0, kept: 1 });
        await engine.completeSnapshot(CTX, { snapshotId: t.snapshotId, changedBlocksCount: 1 });
        assert.ok((await engine.readBlock(CTX, t.snapshotId, 3)).equals(data));
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
      // a's copy was evicted (2 kept): read back from its pack.
      const [yes, reads] = await countCalls('readInto', () => store.holds(da, a));
      assert.equal(yes, true);
      assert.equal(reads, 1, "a's copy is gone: one read of its slot");
      const [yesC, readsC] = await countCalls('readInto', () => store.holds(dc, c));
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
      await store.close();
      // A block damaged on disk is not a proof: false, and the caller hashes instead.
      const reopened = new BlockStore(dir, Date.now, 0);
      await reopened.open();
      const at = reopened.location(db)!;
      const fh = await fsp.open(at.path, 'r+');
      await fh.write(Buffer.alloc(1000), 0, 1000, at.offset + 5000);
      await fh.close();
      assert.equal(await reopened.holds(db, b), false);
      await reopened.close();
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
