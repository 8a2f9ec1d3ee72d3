import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { uploadSnapshot } from '../../src/publish/aws/ebs-upload.js';
import { verifySnapshot } from '../../src/publish/aws/verify.js';
import { openBlockSource } from '../../src/publish/block-source.js';
import { isSharedBlockSource, shareBlockReads } from '../../src/publish/shared-block-reads.js';
import { BLOCK_SIZE, type BlockInfo, type BlockSource } from '../../src/publish/types.js';
import { withCloud } from '../helpers/cloud.js';
import { MemoryCheckpoint, testClients, testPlacement, writeBlocks } from '../helpers/publish.js';
import { withTempDir } from '../helpers/qemu.js';

/** Wraps a source and counts readBlock calls per index; `fail` makes chosen reads fail once. */
function counting(inner: BlockSource, fail: Set<number> = new Set()) {
  const reads = new Map<number, number>();
  const source: BlockSource = {
    size: inner.size,
    blockCount: inner.blockCount,
    contentHash: inner.contentHash,
    blocks: (signal?: AbortSignal) => inner.blocks(signal),
    async readBlock(index: number, into: Buffer, signal?: AbortSignal) {
      reads.set(index, (reads.get(index) ?? 0) + 1);
      // Let other borrowers arrive while the read is in flight.
      await new Promise((r) => setImmediate(r));
      if (fail.delete(index)) throw new Error(`read ${index} failed`);
      await inner.readBlock(index, into, signal);
    },
    close: () => inner.close(),
  };
  return { source, reads, total: () => [...reads.values()].reduce((a, b) => a + b, 0) };
}

/** An in-memory source: block i is filled with byte i + 1. */
function memorySource(blocks: number): BlockSource {
  return {
    size: blocks * BLOCK_SIZE,
    blockCount: blocks,
    contentHash: 'a'.repeat(64),
    async *blocks(): AsyncIterable<BlockInfo> {
      for (let index = 0; index < blocks; index++) yield { index, kind: 'data' };
    },
    async readBlock(index: number, into: Buffer) {
      into.fill(index + 1, 0, BLOCK_SIZE);
    },
    close: async () => {},
  };
}

describe('shareBlockReads', () => {
  it('reads each block once for placements in step, and lends the same bytes', async () => {
    const c = counting(memorySource(48));
    const shared = shareBlockReads(c.source, { keepBlocks: 16 });
    assert.ok(isSharedBlockSource(shared));
    assert.ok(!isSharedBlockSource(c.source));
    // 8 "placements" of 4 workers each walk the blocks in order.
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        let next = 0;
        await Promise.all(
          Array.from({ length: 4 }, async () => {
            while (next < 48) {
              const index = next++;
              const b = await shared.borrowBlock(index);
              try {
                assert.equal(b.data.length, BLOCK_SIZE);
                assert.equal(b.data[0], index + 1);
                assert.equal(b.data[BLOCK_SIZE - 1], index + 1);
              } finally {
                b.release();
              }
            }
          }),
        );
      }),
    );
    assert.equal(c.total(), 48);
    assert.ok([...c.reads.values()].every((n) => n === 1));
    assert.deepEqual(shared.stats(), { reads: 48, hits: 48 * 7 });
  });

  it('keeps at most keepBlocks released blocks: a laggard reads again', async () => {
    const c = counting(memorySource(8));
    const shared = shareBlockReads(c.source, { keepBlocks: 2 });
    for (let i = 0; i < 5; i++) (await shared.borrowBlock(i)).release();
    assert.equal(c.total(), 5);
    // 3 and 4 are kept; 0 was dropped.
    (await shared.borrowBlock(4)).release();
    (await shared.borrowBlock(3)).release();
    assert.equal(c.total(), 5);
    (await shared.borrowBlock(0)).release();
    assert.equal(c.reads.get(0), 2);
    // A borrowed block is never dropped, however many come after it.
    const held = await shared.borrowBlock(7);
    for (let i = 0; i < 5; i++) (await shared.borrowBlock(i)).release();
    assert.equal(held.data[0], 8);
    const before = c.reads.get(7);
    (await shared.borrowBlock(7)).release();
    assert.equal(c.reads.get(7), before, 'the held block was lent again, not read');
    held.release();
    held.release(); // twice does nothing
  });

  it('does not keep a failed read, and one borrower abort does not fail the others', async () => {
    const c = counting(memorySource(4), new Set([1]));
    const shared = shareBlockReads(c.source);
    const [a, b] = await Promise.allSettled([shared.borrowBlock(1), shared.borrowBlock(1)]);
    assert.equal(a.status, 'rejected');
    assert.equal(b.status, 'rejected');
    const again = await shared.borrowBlock(1);
    assert.equal(again.data[0], 2);
    again.release();
    assert.equal(c.reads.get(1), 2);

    const controller = new AbortController();
    const first = shared.borrowBlock(2, controller.signal);
    const second = shared.borrowBlock(2);
    controller.abort();
    await assert.rejects(first, (e: Error) => e.name === 'AbortError');
    const got = await second;
    assert.equal(got.data[0], 3);
    got.release();
    // readBlock copies out of the same cache.
    const into = Buffer.alloc(BLOCK_SIZE);
    await shared.readBlock(2, into);
    assert.equal(into[100], 3);
    assert.equal(c.reads.get(2), 1);
  });

  it('three placements of one image read each data block once, and all verify', async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'disk.raw');
      const specs = Array.from({ length: 24 }, (_, i) => (i % 5 === 4 ? ('hole' as const) : i + 1));
      await writeBlocks(path, specs);
      await withCloud(async ({ url }) => {
        const image = await openBlockSource(path);
        const c = counting(image);
        const shared = shareBlockReads(c.source);
        const regions = ['us-east-1', 'eu-west-1', 'ap-southeast-2'];
        const clients = regions.map((region) => testClients(url, 4, { region }));
        try {
          const results = await Promise.all(
            clients.map((cl, i) =>
              uploadSnapshot({
                clients: cl,
                placement: testPlacement(url, { region: regions[i]!, key: `local/${regions[i]}` }),
                source: shared,
                encrypted: false,
                clientToken: `shared-${i}-${Math.random()}`,
                description: 'ferry test',
                tags: {},
                concurrency: 4,
                checkpoint: new MemoryCheckpoint(),
              }),
            ),
          );
          let data = 0;
          for await (const b of image.blocks()) if (b.kind === 'data') data++;
          for (const r of results) assert.equal(r.blocksSent, data);
          assert.equal(c.total(), data, 'each data block read once for three placements');
          assert.ok([...c.reads.values()].every((n) => n === 1));
          for (const [i, r] of results.entries()) {
            const v = await verifySnapshot(clients[i]!, r.snapshotId, image);
            assert.ok(v.ok);
          }
          assert.equal(data, 20);
        } finally {
          for (const cl of clients) cl.destroy();
          await image.close();
        }
      });
    });
  });
});
