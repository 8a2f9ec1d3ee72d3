import assert from 'node:assert/strict';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  BLOCK_SIZE,
  EbsEngine,
  type EbsEngineOptions,
  type EbsExceptionName,
  isEbsError,
} from '../../src/cloud/ebs/index.js';
import { isFerryError } from '../../src/errors/index.js';
import { block, CTX, fakeClock, linear, sha256b64, storedBlockCount } from '../helpers/ebs.js';
import { withTempDir } from '../helpers/qemu.js';

async function withEngine<T>(
  fn: (engine: EbsEngine, dir: string) => Promise<T>,
  options: EbsEngineOptions = {},
): Promise<T> {
  return withTempDir(async (dir) => {
    const engine = await EbsEngine.open(dir, options);
    try {
      return await fn(engine, dir);
    } finally {
      await engine.close();
    }
  });
}

async function rejectsWith(
  p: Promise<unknown>,
  name: EbsExceptionName,
  reason?: string,
): Promise<void> {
  await assert.rejects(p, (error: unknown) => {
    assert.ok(isEbsError(error), `an EbsError, not ${String(error)}`);
    assert.equal(error.name, name, error.message);
    if (reason !== undefined) assert.equal(error.reason, reason, error.message);
    return true;
  });
}

function put(
  engine: EbsEngine,
  snapshotId: string,
  index: number,
  data: Buffer,
  progress?: number,
) {
  return engine.putSnapshotBlock(CTX, {
    snapshotId,
    blockIndex: index,
    data,
    dataLength: data.length,
    checksum: sha256b64(data),
    checksumAlgorithm: 'SHA256',
    progress,
  });
}

async function readAll(engine: EbsEngine, snapshotId: string): Promise<Map<number, Buffer>> {
  const out = new Map<number, Buffer>();
  let nextToken: string | undefined;
  do {
    const page = await engine.listSnapshotBlocks(CTX, { snapshotId, nextToken });
    for (const b of page.blocks) {
      const r = await engine.getSnapshotBlock(CTX, {
        snapshotId,
        blockIndex: b.blockIndex,
        blockToken: b.blockToken,
      });
      assert.equal(r.checksum, sha256b64(r.data));
      out.set(b.blockIndex, r.data);
    }
    nextToken = page.nextToken;
  } while (nextToken !== undefined);
  return out;
}

describe('EBS engine', () => {
  it('writes blocks, completes with the LINEAR checksum and reads them back', async () => {
    await withEngine(async (engine) => {
      const s = await engine.startSnapshot(CTX, {
        volumeSize: 1,
        description: 'one',
        tags: [{ key: 'k', value: 'v' }],
      });
      assert.match(s.snapshotId, /^snap-[0-9a-f]{17}$/);
      assert.equal(s.status, 'pending');
      assert.equal(s.blockSize, BLOCK_SIZE);
      assert.equal(s.ownerId, CTX.account);
      const data = [block(1), block(2), block(3)];
      const r = await put(engine, s.snapshotId, 7, data[0]!, 30);
      assert.equal(r.checksum, sha256b64(data[0]!));
      await put(engine, s.snapshotId, 3, data[1]!, 60);
      await put(engine, s.snapshotId, 2047, data[2]!, 90);
      assert.equal((await engine.getSnapshot(CTX, s.snapshotId))?.progress, 90);
      const done = await engine.completeSnapshot(CTX, {
        snapshotId: s.snapshotId,
        changedBlocksCount: 3,
        checksum: linear([data[1]!, data[0]!, data[2]!]),
        checksumAlgorithm: 'SHA256',
        checksumAggregationMethod: 'LINEAR',
      });
      assert.equal(done.status, 'completed');
      const info = await engine.getSnapshot(CTX, s.snapshotId);
      assert.equal(info?.status, 'completed');
      assert.equal(info?.progress, 100);
      assert.equal(info?.changedBlocks, 3);
      assert.deepEqual(info?.tags, [{ key: 'k', value: 'v' }]);
      const all = await readAll(engine, s.snapshotId);
      assert.deepEqual([...all.keys()], [3, 7, 2047]);
      assert.ok(all.get(7)!.equals(data[0]!));
      assert.ok(all.get(2047)!.equals(data[2]!));
      // A retried CompleteSnapshot answers the same; a completed snapshot takes no puts.
      assert.equal(
        (await engine.completeSnapshot(CTX, { snapshotId: s.snapshotId, changedBlocksCount: 3 }))
          .status,
        'completed',
      );
      await rejectsWith(put(engine, s.snapshotId, 1, block(9)), 'ValidationException');
    });
  });

  it('refuses other data under the checksum of a block it stores (proven by compare, not by hash)', async () => {
    await withEngine(async (engine) => {
      const { snapshotId } = await engine.startSnapshot(CTX, { volumeSize: 1 });
      const data = block(7);
      const claim = (index: number, bytes: Buffer) =>
        engine.putSnapshotBlock(CTX, {
          snapshotId,
          blockIndex: index,
          data: bytes,
          dataLength: bytes.length,
          checksum: sha256b64(data),
          checksumAlgorithm: 'SHA256',
        });
      await claim(0, data);
      assert.equal((await claim(1, Buffer.from(data))).checksum, sha256b64(data));
      for (const at of [0, 4096, BLOCK_SIZE - 1]) {
        const other = Buffer.from(data);
        other[at] = (other[at] ?? 0) ^ 1;
        await rejectsWith(claim(2, other), 'ValidationException', 'INVALID_PARAMETER_VALUE');
      }
      // The refused puts left nothing: two blocks complete the snapshot.
      await engine.completeSnapshot(CTX, { snapshotId, changedBlocksCount: 2 });
      const blocks = await readAll(engine, snapshotId);
      assert.deepEqual([...blocks.keys()].sort(), [0, 1]);
      assert.ok(blocks.get(1)?.equals(data));
    });
  });

  it('refuses bad checksums, lengths, algorithms and out-of-range indexes', async () => {
    await withEngine(async (engine) => {
      const { snapshotId } = await engine.startSnapshot(CTX, { volumeSize: 1 });
      const data = block(1);
      const base = {
        snapshotId,
        blockIndex: 0,
        data,
        dataLength: BLOCK_SIZE,
        checksumAlgorithm: 'SHA256',
      };
      await rejectsWith(
        engine.putSnapshotBlock(CTX, { ...base, checksum: sha256b64(block(2)) }),
        'ValidationException',
        'INVALID_PARAMETER_VALUE',
      );
      await rejectsWith(
        engine.putSnapshotBlock(CTX, { ...base, checksum: 'not-base64!' }),
        'ValidationException',
      );
      await rejectsWith(
        engine.putSnapshotBlock(CTX, {
          ...base,
          checksum: sha256b64(data),
          checksumAlgorithm: 'MD5',
        }),
        'ValidationException',
      );
      const half = data.subarray(0, 4096);
      await rejectsWith(
        engine.putSnapshotBlock(CTX, {
          ...base,
          data: half,
          dataLength: 4096,
          checksum: sha256b64(half),
        }),
        'ValidationException',
      );
      await rejectsWith(
        engine.putSnapshotBlock(CTX, {
          ...base,
          dataLength: BLOCK_SIZE - 1,
          checksum: sha256b64(data),
        }),
        'ValidationException',
      );
      await rejectsWith(
        put(engine, snapshotId, 2048, data),
        'ValidationException',
        'INVALID_BLOCK',
      );
      await rejectsWith(put(engine, snapshotId, -1, data), 'ValidationException', 'INVALID_BLOCK');
      await put(engine, snapshotId, 2047, data);
      await rejectsWith(
        put(engine, 'snap-0123456789abcdef0', 0, data),
        'ResourceNotFoundException',
        'SNAPSHOT_NOT_FOUND',
      );
      await rejectsWith(
        put(engine, 'vol-1', 0, data),
        'ValidationException',
        'INVALID_SNAPSHOT_ID',
      );
      await rejectsWith(
        engine.startSnapshot(CTX, { volumeSize: 0 }),
        'ValidationException',
        'INVALID_VOLUME_SIZE',
      );
      await rejectsWith(
        engine.startSnapshot(CTX, { volumeSize: 65537 }),
        'ValidationException',
        'INVALID_VOLUME_SIZE',
      );
      await rejectsWith(
        engine.startSnapshot(CTX, { volumeSize: 1, timeout: 5 }),
        'ValidationException',
      );
    });
  });

  it('checks ChangedBlocksCount and the aggregate checksum, leaving the snapshot pending when wrong', async () => {
    await withEngine(async (engine) => {
      const { snapshotId } = await engine.startSnapshot(CTX, { volumeSize: 1 });
      await put(engine, snapshotId, 0, block(1));
      await put(engine, snapshotId, 1, block(2));
      await put(engine, snapshotId, 1, block(3)); // overwritten: still two blocks
      await rejectsWith(
        engine.completeSnapshot(CTX, { snapshotId, changedBlocksCount: 3 }),
        'ValidationException',
      );
      await rejectsWith(
        engine.completeSnapshot(CTX, {
          snapshotId,
          changedBlocksCount: 2,
          checksum: linear([block(1), block(2)]),
          checksumAlgorithm: 'SHA256',
          checksumAggregationMethod: 'LINEAR',
        }),
        'ValidationException',
      );
      assert.equal((await engine.getSnapshot(CTX, snapshotId))?.status, 'pending');
      await engine.completeSnapshot(CTX, {
        snapshotId,
        changedBlocksCount: 2,
        checksum: linear([block(1), block(3)]),
        checksumAlgorithm: 'SHA256',
        checksumAggregationMethod: 'LINEAR',
      });
      const all = await readAll(engine, snapshotId);
      assert.ok(all.get(1)!.equals(block(3)), 'the last put of an index wins');
    });
  });

  it('makes StartSnapshot idempotent per client token', async () => {
    await withEngine(async (engine) => {
      const a = await engine.startSnapshot(CTX, {
        volumeSize: 2,
        clientToken: 'tok-1',
        description: 'x',
      });
      const b = await engine.startSnapshot(CTX, {
        volumeSize: 2,
        clientToken: 'tok-1',
        description: 'x',
      });
      assert.equal(b.snapshotId, a.snapshotId);
      await rejectsWith(
        engine.startSnapshot(CTX, { volumeSize: 3, clientToken: 'tok-1', description: 'x' }),
        'ConflictException',
      );
      const c = await engine.startSnapshot(CTX, {
        volumeSize: 2,
        clientToken: 'tok-2',
        description: 'x',
      });
      assert.notEqual(c.snapshotId, a.snapshotId);
      // Another account's token space is its own.
      const other = await engine.startSnapshot(
        { account: '111111111111', region: 'us-east-1' },
        { volumeSize: 2, clientToken: 'tok-1', description: 'x' },
      );
      assert.notEqual(other.snapshotId, a.snapshotId);
      assert.equal(
        await engine.getSnapshot(CTX, other.snapshotId),
        undefined,
        'accounts are isolated',
      );
    });
  });

  it('enforces the pending-snapshot limit per account and region', async () => {
    await withEngine(
      async (engine) => {
        const a = await engine.startSnapshot(CTX, { volumeSize: 1 });
        await engine.startSnapshot(CTX, { volumeSize: 1 });
        await rejectsWith(
          engine.startSnapshot(CTX, { volumeSize: 1 }),
          'ServiceQuotaExceededException',
        );
        await engine.startSnapshot({ ...CTX, region: 'eu-west-1' }, { volumeSize: 1 });
        await engine.completeSnapshot(CTX, { snapshotId: a.snapshotId, changedBlocksCount: 0 });
        await engine.startSnapshot(CTX, { volumeSize: 1 });
      },
      { pendingSnapshotLimit: 2 },
    );
  });

  it('throttles requests beyond the configured rate with RequestThrottledException', async () => {
    const clock = fakeClock();
    await withEngine(
      async (engine) => {
        const { snapshotId } = await engine.startSnapshot(CTX, { volumeSize: 1 });
        await put(engine, snapshotId, 0, block(1));
        await put(engine, snapshotId, 1, block(2));
        await rejectsWith(
          put(engine, snapshotId, 2, block(3)),
          'RequestThrottledException',
          'ACCOUNT_THROTTLED',
        );
        clock.advance(500);
        await put(engine, snapshotId, 2, block(3));
        await rejectsWith(put(engine, snapshotId, 3, block(4)), 'RequestThrottledException');
        // Other operations and other accounts have their own buckets.
        await engine.completeSnapshot(CTX, { snapshotId, changedBlocksCount: 3 });
        const o = await engine.startSnapshot(
          { ...CTX, account: '111111111111' },
          { volumeSize: 1 },
        );
        await engine.putSnapshotBlock(
          { ...CTX, account: '111111111111' },
          {
            snapshotId: o.snapshotId,
            blockIndex: 0,
            data: block(1),
            dataLength: BLOCK_SIZE,
            checksum: sha256b64(block(1)),
            checksumAlgorithm: 'SHA256',
          },
        );
      },
      { now: clock.now, rateLimits: { PutSnapshotBlock: { perSecond: 2 } } },
    );
  });

  it('moves a snapshot not completed within its timeout to error', async () => {
    const clock = fakeClock();
    await withEngine(
      async (engine) => {
        const a = await engine.startSnapshot(CTX, { volumeSize: 1, timeout: 10 });
        const b = await engine.startSnapshot(CTX, { volumeSize: 1, timeout: 10 });
        clock.advance(9 * 60_000);
        await put(engine, b.snapshotId, 0, block(1)); // a write restarts b's timer
        clock.advance(60_000);
        assert.equal((await engine.getSnapshot(CTX, a.snapshotId))?.status, 'error');
        await rejectsWith(
          put(engine, a.snapshotId, 0, block(1)),
          'ValidationException',
          'WRITE_REQUEST_TIMEOUT',
        );
        await rejectsWith(
          engine.completeSnapshot(CTX, { snapshotId: a.snapshotId, changedBlocksCount: 0 }),
          'ValidationException',
        );
        assert.equal((await engine.getSnapshot(CTX, b.snapshotId))?.status, 'pending');
        clock.advance(8 * 60_000);
        await engine.completeSnapshot(CTX, { snapshotId: b.snapshotId, changedBlocksCount: 1 });
        assert.equal((await engine.getSnapshot(CTX, b.snapshotId))?.status, 'completed');
      },
      { now: clock.now },
    );
  });

  it('lets a child share its parent blocks, storing only what it put', async () => {
    await withEngine(async (engine, dir) => {
      const p = await engine.startSnapshot(CTX, { volumeSize: 1 });
      for (const i of [0, 1, 2]) await put(engine, p.snapshotId, i, block(i));
      await engine.completeSnapshot(CTX, { snapshotId: p.snapshotId, changedBlocksCount: 3 });
      const c = await engine.startSnapshot(CTX, { volumeSize: 2, parentSnapshotId: p.snapshotId });
      assert.equal(c.parentSnapshotId, p.snapshotId);
      await put(engine, c.snapshotId, 1, block(11));
      await put(engine, c.snapshotId, 3000, block(2)); // same data as the parent's block 2
      await rejectsWith(
        engine.completeSnapshot(CTX, { snapshotId: c.snapshotId, changedBlocksCount: 5 }),
        'ValidationException',
      );
      await engine.completeSnapshot(CTX, {
        snapshotId: c.snapshotId,
        changedBlocksCount: 2,
        checksum: linear([block(11), block(2)]),
        checksumAlgorithm: 'SHA256',
        checksumAggregationMethod: 'LINEAR',
      });
      const child = await readAll(engine, c.snapshotId);
      assert.deepEqual([...child.keys()], [0, 1, 2, 3000]);
      assert.ok(child.get(0)!.equals(block(0)));
      assert.ok(child.get(1)!.equals(block(11)));
      const parent = await readAll(engine, p.snapshotId);
      assert.ok(parent.get(1)!.equals(block(1)), 'the parent is unchanged');
      // Four distinct contents, four stored blocks: nothing was copied.
      assert.equal(await storedBlockCount(dir), 4);
      const map = await stat(
        join(dir, 'accounts', CTX.account, CTX.region, 'snapshots', `${c.snapshotId}.map`),
      );
      assert.equal(map.size, 8 + 4 + 2 * 36 + 32, "the child's map holds its own two blocks");
      // A child may not be smaller than its parent, nor name Encrypted.
      await rejectsWith(
        engine.startSnapshot(CTX, { volumeSize: 1, parentSnapshotId: c.snapshotId }),
        'ValidationException',
        'INVALID_VOLUME_SIZE',
      );
      await rejectsWith(
        engine.startSnapshot(CTX, {
          volumeSize: 2,
          parentSnapshotId: c.snapshotId,
          encrypted: true,
        }),
        'ValidationException',
      );
      await rejectsWith(
        engine.startSnapshot(CTX, { volumeSize: 2, parentSnapshotId: 'snap-0000000000000000f' }),
        'ResourceNotFoundException',
      );
    });
  });

  it('lists changed blocks between two snapshots of a lineage, or against the parent', async () => {
    await withEngine(async (engine) => {
      const a = await engine.startSnapshot(CTX, { volumeSize: 1 });
      for (const i of [0, 1, 2, 3]) await put(engine, a.snapshotId, i, block(i));
      await engine.completeSnapshot(CTX, { snapshotId: a.snapshotId, changedBlocksCount: 4 });
      const b = await engine.startSnapshot(CTX, { volumeSize: 1, parentSnapshotId: a.snapshotId });
      await put(engine, b.snapshotId, 1, block(21));
      await put(engine, b.snapshotId, 2, block(2)); // rewritten with the same data: unchanged
      await put(engine, b.snapshotId, 9, block(29));
      await engine.completeSnapshot(CTX, { snapshotId: b.snapshotId, changedBlocksCount: 3 });
      const c = await engine.startSnapshot(CTX, { volumeSize: 1, parentSnapshotId: b.snapshotId });
      await put(engine, c.snapshotId, 3, block(33));
      await engine.completeSnapshot(CTX, { snapshotId: c.snapshotId, changedBlocksCount: 1 });

      const ac = await engine.listChangedBlocks(CTX, {
        firstSnapshotId: a.snapshotId,
        secondSnapshotId: c.snapshotId,
      });
      assert.deepEqual(
        ac.blocks.map((x) => x.blockIndex),
        [1, 3, 9],
      );
      assert.equal(ac.blocks[2]!.firstBlockToken, undefined, 'a has no block 9');
      const first = await engine.getSnapshotBlock(CTX, {
        snapshotId: a.snapshotId,
        blockIndex: 3,
        blockToken: ac.blocks[1]!.firstBlockToken!,
      });
      assert.ok(first.data.equals(block(3)));
      const second = await engine.getSnapshotBlock(CTX, {
        snapshotId: c.snapshotId,
        blockIndex: 3,
        blockToken: ac.blocks[1]!.secondBlockToken!,
      });
      assert.ok(second.data.equals(block(33)));
      // Only the second: against its parent.
      const onlyB = await engine.listChangedBlocks(CTX, { secondSnapshotId: b.snapshotId });
      assert.deepEqual(
        onlyB.blocks.map((x) => x.blockIndex),
        [1, 9],
      );
      assert.ok(
        onlyB.blocks.every(
          (x) => x.firstBlockToken === undefined && x.secondBlockToken !== undefined,
        ),
      );
      const onlyA = await engine.listChangedBlocks(CTX, { secondSnapshotId: a.snapshotId });
      assert.deepEqual(
        onlyA.blocks.map((x) => x.blockIndex),
        [0, 1, 2, 3],
      );
      // Reversed order lists the same indexes.
      const ca = await engine.listChangedBlocks(CTX, {
        firstSnapshotId: c.snapshotId,
        secondSnapshotId: a.snapshotId,
      });
      assert.deepEqual(
        ca.blocks.map((x) => x.blockIndex),
        [1, 3, 9],
      );
      assert.equal(ca.blocks[2]!.secondBlockToken, undefined);
      // Another lineage is unrelated.
      const u = await engine.startSnapshot(CTX, { volumeSize: 1 });
      await engine.completeSnapshot(CTX, { snapshotId: u.snapshotId, changedBlocksCount: 0 });
      await rejectsWith(
        engine.listChangedBlocks(CTX, {
          firstSnapshotId: u.snapshotId,
          secondSnapshotId: c.snapshotId,
        }),
        'ValidationException',
        'UNRELATED_SNAPSHOTS',
      );
    });
  });

  it('pages both listings with MaxResults, NextToken and StartingBlockIndex', async () => {
    await withEngine(async (engine) => {
      const { snapshotId } = await engine.startSnapshot(CTX, { volumeSize: 1 });
      const data = block(5);
      for (let i = 0; i < 250; i++) await put(engine, snapshotId, i * 2, data);
      await engine.completeSnapshot(CTX, { snapshotId, changedBlocksCount: 250 });
      const seen: number[] = [];
      let nextToken: string | undefined;
      let pages = 0;
      do {
        const page = await engine.listSnapshotBlocks(CTX, {
          snapshotId,
          maxResults: 100,
          nextToken,
        });
        seen.push(...page.blocks.map((b) => b.blockIndex));
        nextToken = page.nextToken;
        pages++;
      } while (nextToken !== undefined);
      assert.equal(pages, 3);
      assert.deepEqual(
        seen,
        Array.from({ length: 250 }, (_, i) => i * 2),
      );
      const from = await engine.listSnapshotBlocks(CTX, {
        snapshotId,
        maxResults: 100,
        startingBlockIndex: 401,
      });
      assert.deepEqual(from.blocks.map((b) => b.blockIndex).slice(0, 2), [402, 404]);
      assert.equal(from.blocks.length, 49);
      assert.equal(from.nextToken, undefined);
      const changed = await engine.listChangedBlocks(CTX, {
        secondSnapshotId: snapshotId,
        maxResults: 100,
        startingBlockIndex: 100,
      });
      assert.equal(changed.blocks[0]!.blockIndex, 100);
      const more = await engine.listChangedBlocks(CTX, {
        secondSnapshotId: snapshotId,
        maxResults: 100,
        nextToken: changed.nextToken,
      });
      assert.equal(more.blocks[0]!.blockIndex, 300);
      await rejectsWith(
        engine.listSnapshotBlocks(CTX, { snapshotId, nextToken: changed.nextToken }),
        'ValidationException',
        'INVALID_PAGE_TOKEN',
      );
      await rejectsWith(
        engine.listSnapshotBlocks(CTX, { snapshotId, nextToken: 'AAAA' }),
        'ValidationException',
        'INVALID_PAGE_TOKEN',
      );
      await rejectsWith(
        engine.listSnapshotBlocks(CTX, { snapshotId, maxResults: 99 }),
        'ValidationException',
      );
      await rejectsWith(
        engine.listSnapshotBlocks(CTX, { snapshotId, maxResults: 10001 }),
        'ValidationException',
      );
    });
  });

  it('validates block tokens: per snapshot and index, and until they expire', async () => {
    const clock = fakeClock();
    await withEngine(
      async (engine) => {
        const { snapshotId } = await engine.startSnapshot(CTX, { volumeSize: 1 });
        await put(engine, snapshotId, 0, block(0));
        await put(engine, snapshotId, 1, block(1));
        await engine.completeSnapshot(CTX, { snapshotId, changedBlocksCount: 2 });
        const list = await engine.listSnapshotBlocks(CTX, { snapshotId });
        const t0 = list.blocks[0]!.blockToken;
        assert.match(t0, /^[A-Za-z0-9+/=]+$/);
        assert.equal(list.expiryTime.getTime(), Math.floor(clock.now() / 1000) * 1000 + 3600_000);
        await rejectsWith(
          engine.getSnapshotBlock(CTX, { snapshotId, blockIndex: 1, blockToken: t0 }),
          'ValidationException',
          'INVALID_BLOCK_TOKEN',
        );
        await rejectsWith(
          engine.getSnapshotBlock(CTX, { snapshotId, blockIndex: 5, blockToken: t0 }),
          'ValidationException',
          'INVALID_BLOCK_TOKEN',
        );
        await rejectsWith(
          engine.getSnapshotBlock(CTX, { snapshotId, blockIndex: 4096, blockToken: t0 }),
          'ValidationException',
          'INVALID_BLOCK',
        );
        clock.advance(3601_000);
        await rejectsWith(
          engine.getSnapshotBlock(CTX, { snapshotId, blockIndex: 0, blockToken: t0 }),
          'ValidationException',
          'INVALID_BLOCK_TOKEN',
        );
      },
      { now: clock.now, blockTokenTtlSeconds: 3600 },
    );
  });

  it('keeps acknowledged blocks across a restart and drops what a crash left half-written', async () => {
    await withTempDir(async (dir) => {
      let engine = await EbsEngine.open(dir);
      const { snapshotId } = await engine.startSnapshot(CTX, { volumeSize: 1 });
      await put(engine, snapshotId, 4, block(4));
      await put(engine, snapshotId, 5, block(5));
      await engine.close();
      // What a kill -9 can leave: a torn journal line of an unacknowledged
      // put, and a torn slot at the end of the pack file.
      const journal = join(
        dir,
        'accounts',
        CTX.account,
        CTX.region,
        'journals',
        `${snapshotId}.log`,
      );
      const { appendFile } = await import('node:fs/promises');
      await appendFile(journal, '6 0123456789abcdef');
      await appendFile(join(dir, 'packs', '00000001.pack'), block(6).subarray(0, 1000));
      engine = await EbsEngine.open(dir);
      try {
        assert.equal((await engine.getSnapshot(CTX, snapshotId))?.changedBlocks, 2);
        await put(engine, snapshotId, 7, block(7));
        assert.equal(await storedBlockCount(dir), 3, 'the next block took the torn slot');
        assert.match(
          await readFile(journal, 'latin1'),
          /^4 [0-9a-f]{64} -1 \d+\n5 [0-9a-f]{64} -1 \d+\n7 [0-9a-f]{64} -1 \d+\n$/,
        );
        await engine.completeSnapshot(CTX, {
          snapshotId,
          changedBlocksCount: 3,
          checksum: linear([block(4), block(5), block(7)]),
          checksumAlgorithm: 'SHA256',
          checksumAggregationMethod: 'LINEAR',
        });
      } finally {
        await engine.close();
      }
      engine = await EbsEngine.open(dir);
      try {
        const all = await readAll(engine, snapshotId);
        assert.deepEqual([...all.keys()], [4, 5, 7]);
        assert.ok(all.get(5)!.equals(block(5)));
      } finally {
        await engine.close();
      }
    });
  });

  it('holds its data directory: a second engine on it is refused until the first closes', async () => {
    await withTempDir(async (dir) => {
      const engine = await EbsEngine.open(dir);
      await assert.rejects(EbsEngine.open(dir), (e: unknown) =>
        isFerryError(e, 'FERRY_STORE_LOCKED'),
      );
      await engine.close();
      await (await EbsEngine.open(dir)).close();
    });
  });

  it('takes 64 concurrent puts, all of them durable', async () => {
    await withTempDir(async (dir) => {
      let engine = await EbsEngine.open(dir);
      const { snapshotId } = await engine.startSnapshot(CTX, { volumeSize: 1 });
      const indexes = Array.from({ length: 64 }, (_, i) => i * 31);
      await Promise.all(indexes.map((i) => put(engine, snapshotId, i, block(i))));
      await engine.close();
      engine = await EbsEngine.open(dir);
      try {
        await engine.completeSnapshot(CTX, {
          snapshotId,
          changedBlocksCount: 64,
          checksum: linear(indexes.map((i) => block(i))),
          checksumAlgorithm: 'SHA256',
          checksumAggregationMethod: 'LINEAR',
        });
        const all = await readAll(engine, snapshotId);
        assert.deepEqual([...all.keys()], indexes);
        for (const i of indexes) assert.ok(all.get(i)!.equals(block(i)));
      } finally {
        await engine.close();
      }
    });
  });

  it('counts the timeout from the last put, across a restart', async () => {
    const clock = fakeClock();
    await withTempDir(async (dir) => {
      let engine = await EbsEngine.open(dir, { now: clock.now });
      const { snapshotId } = await engine.startSnapshot(CTX, { volumeSize: 1, timeout: 10 });
      clock.advance(9 * 60_000);
      await put(engine, snapshotId, 0, block(0));
      await engine.close();
      clock.advance(6 * 60_000);
      engine = await EbsEngine.open(dir, { now: clock.now });
      try {
        assert.equal((await engine.getSnapshot(CTX, snapshotId))?.status, 'pending');
        clock.advance(4 * 60_000);
        assert.equal((await engine.getSnapshot(CTX, snapshotId))?.status, 'error');
      } finally {
        await engine.close();
      }
      engine = await EbsEngine.open(dir, { now: clock.now });
      try {
        const info = await engine.getSnapshot(CTX, snapshotId);
        assert.equal(info?.status, 'error', 'the error state is on disk');
        assert.match(info?.statusMessage ?? '', /timed out/);
      } finally {
        await engine.close();
      }
    });
  });

  it('deletes snapshots behind in-use guards, keeping a deleted parent while a child needs it', async () => {
    await withEngine(async (engine, dir) => {
      const p = await engine.startSnapshot(CTX, { volumeSize: 1 });
      await put(engine, p.snapshotId, 0, block(0));
      await put(engine, p.snapshotId, 1, block(1));
      await engine.completeSnapshot(CTX, { snapshotId: p.snapshotId, changedBlocksCount: 2 });
      const c = await engine.startSnapshot(CTX, { volumeSize: 1, parentSnapshotId: p.snapshotId });
      await put(engine, c.snapshotId, 1, block(11));
      await engine.completeSnapshot(CTX, { snapshotId: c.snapshotId, changedBlocksCount: 1 });
      engine.addInUseGuard((_ctx, id) =>
        id === c.snapshotId ? 'ami-0123456789abcdef0' : undefined,
      );
      await rejectsWith(engine.deleteSnapshot(CTX, c.snapshotId), 'ConflictException');
      await engine.deleteSnapshot(CTX, p.snapshotId);
      assert.equal(await engine.getSnapshot(CTX, p.snapshotId), undefined);
      assert.deepEqual(
        (await engine.listSnapshots(CTX)).map((s) => s.snapshotId),
        [c.snapshotId],
      );
      await rejectsWith(engine.deleteSnapshot(CTX, p.snapshotId), 'ResourceNotFoundException');
      const child = await readAll(engine, c.snapshotId);
      assert.ok(
        child.get(0)!.equals(block(0)),
        "the deleted parent's block is still read through the child",
      );
      const q = await engine.startSnapshot(CTX, { volumeSize: 1 });
      await put(engine, q.snapshotId, 0, block(50));
      await engine.deleteSnapshot(CTX, q.snapshotId); // a pending one
      const snaps = join(dir, 'accounts', CTX.account, CTX.region, 'snapshots');
      assert.ok((await readdir(snaps)).includes(`${p.snapshotId}.json`));
      assert.deepEqual(
        (await engine.collectGarbage(-1)).removed,
        1,
        'block 50 had no snapshot left',
      );
      const copy = await engine.copySnapshot(CTX, c.snapshotId, { ...CTX, region: 'eu-west-1' });
      assert.equal(copy.status, 'completed');
      assert.ok(
        (await engine.readBlock({ ...CTX, region: 'eu-west-1' }, copy.snapshotId, 1)).equals(
          block(11),
        ),
      );
    });
  });

  it('records encryption and its key, and refuses another account\u2019s key', async () => {
    await withEngine(
      async (engine) => {
        const e = await engine.startSnapshot(CTX, { volumeSize: 1, encrypted: true });
        assert.equal(e.encrypted, true);
        assert.equal(e.kmsKeyArn, 'arn:aws:kms:us-east-1:000000000000:key/default');
        await engine.completeSnapshot(CTX, { snapshotId: e.snapshotId, changedBlocksCount: 0 });
        const child = await engine.startSnapshot(CTX, {
          volumeSize: 1,
          parentSnapshotId: e.snapshotId,
        });
        assert.equal(child.encrypted, true);
        assert.equal(child.kmsKeyArn, e.kmsKeyArn);
        const own = 'arn:aws:kms:us-east-1:000000000000:key/1234abcd-12ab-34cd-56ef-1234567890ab';
        assert.equal(
          (await engine.startSnapshot(CTX, { volumeSize: 1, encrypted: true, kmsKeyArn: own }))
            .kmsKeyArn,
          own,
        );
        await rejectsWith(
          engine.startSnapshot(CTX, {
            volumeSize: 1,
            encrypted: true,
            kmsKeyArn: own.replace('000000000000', '222222222222'),
          }),
          'AccessDeniedException',
        );
        await rejectsWith(
          engine.startSnapshot(CTX, { volumeSize: 1, kmsKeyArn: own }),
          'ValidationException',
        );
        await rejectsWith(
          engine.startSnapshot(CTX, { volumeSize: 1, encrypted: true, kmsKeyArn: 'alias/aws/ebs' }),
          'ValidationException',
          'INVALID_CUSTOMER_KEY',
        );
        const plain = await engine.startSnapshot(CTX, { volumeSize: 1 });
        assert.equal(plain.encrypted, false);
        assert.equal(plain.kmsKeyArn, null);
      },
      { defaultKmsKeyArn: (account, region) => `arn:aws:kms:${region}:${account}:key/default` },
    );
  });
});
