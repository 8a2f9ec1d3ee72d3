import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { convertImage } from '../../src/disk/index.js';
import { writeSampleImage } from '../../src/disk/sample-image.js';
import { isFerryError } from '../../src/errors/index.js';
import { blockDigests, readDigests, writeDigests } from '../../src/publish/block-digests.js';
import { openBlockSource, ZERO_BLOCK_SHA256 } from '../../src/publish/block-source.js';
import { BLOCK_SIZE, type BlockInfo } from '../../src/publish/types.js';
import { sha256b64 } from '../helpers/ebs.js';
import { NEEDS_HOLES, writeBlocks } from '../helpers/publish.js';
import { withTempDir } from '../helpers/qemu.js';

async function collect(it: AsyncIterable<BlockInfo>): Promise<BlockInfo[]> {
  const out: BlockInfo[] = [];
  for await (const b of it) out.push(b);
  return out;
}

/** The content hash by its definition: each block's digest, or 32 zero bytes for all-zero blocks. */
function expectedHash(contents: readonly Buffer[]): string {
  const h = createHash('sha256');
  for (const c of contents) {
    h.update(c.every((x) => x === 0) ? Buffer.alloc(32) : createHash('sha256').update(c).digest());
  }
  return h.digest('hex');
}

describe('openBlockSource', () => {
  it('maps holes, zero data and data, with digests and the content hash from one read pass', {
    skip: NEEDS_HOLES,
  }, async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'disk.raw');
      const contents = await writeBlocks(path, [1, 'hole', 'zero', 2, 'hole', 3], 4096);
      const src = await openBlockSource(path);
      try {
        assert.equal(src.blockCount, 6);
        assert.equal(src.size, 6 * BLOCK_SIZE - 4096);
        const blocks = await collect(src.blocks());
        assert.deepEqual(
          blocks.map((b) => b.kind),
          ['data', 'hole', 'data', 'data', 'hole', 'data'],
        );
        assert.equal(blocks[0]!.sha256, sha256b64(contents[0]!));
        assert.equal(blocks[2]!.sha256, ZERO_BLOCK_SHA256);
        // The short last block is hashed zero-padded, as EBS stores it.
        assert.equal(blocks[5]!.sha256, sha256b64(contents[5]!));
        assert.equal(src.contentHash, expectedHash(contents));
        const buf = Buffer.alloc(BLOCK_SIZE, 0xff);
        await src.readBlock(5, buf);
        assert.ok(buf.equals(contents[5]!));
        await assert.rejects(src.readBlock(6, buf), (e) =>
          isFerryError(e, 'FERRY_READ_OUT_OF_RANGE'),
        );
        const digests = await blockDigests(src);
        assert.deepEqual(
          [...digests.keys()].sort((a, b) => a - b),
          [0, 2, 3, 5],
        );
        assert.equal(digests.get(2), ZERO_BLOCK_SHA256);
      } finally {
        await src.close();
      }
    });
  });

  it('takes digests and zero chunks from a render map without reading, and refuses a map of another image', {
    skip: NEEDS_HOLES,
  }, async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'disk.raw');
      const contents = await writeBlocks(path, [1, 'zero', 2, 'hole']);
      const map = join(dir, 'disk.raw.ferry-map.json');
      await writeFile(
        map,
        JSON.stringify({
          chunkDigests: {
            size: BLOCK_SIZE,
            sha256: { '0': sha256b64(contents[0]!), '2': sha256b64(contents[2]!) },
          },
        }),
      );
      const src = await openBlockSource(path, { map });
      try {
        const blocks = await collect(src.blocks());
        assert.deepEqual(
          blocks.map((b) => b.kind),
          ['data', 'zero', 'data', 'hole'],
        );
        assert.equal(blocks[2]!.sha256, sha256b64(contents[2]!));
        assert.equal(src.contentHash, expectedHash(contents));
      } finally {
        await src.close();
      }
      // The map is trusted for digests: a wrong one shows, and one naming a hole is refused.
      await writeFile(
        map,
        JSON.stringify({
          chunkDigests: { size: BLOCK_SIZE, sha256: { '3': sha256b64(contents[0]!) } },
        }),
      );
      await assert.rejects(openBlockSource(path, { map }), (e) =>
        isFerryError(e, 'FERRY_PUBLISH_MAP_INVALID'),
      );
      await writeFile(
        map,
        JSON.stringify({ chunkDigests: { size: BLOCK_SIZE, sha256: { '9': 'x' } } }),
      );
      await assert.rejects(openBlockSource(path, { map }), (e) =>
        isFerryError(e, 'FERRY_PUBLISH_MAP_INVALID'),
      );
      await writeFile(map, '{"no":"digests"}');
      await assert.rejects(openBlockSource(path, { map }), (e) =>
        isFerryError(e, 'FERRY_PUBLISH_MAP_INVALID'),
      );
      await writeFile(map, 'not json');
      await assert.rejects(openBlockSource(path, { map }), (e) =>
        isFerryError(e, 'FERRY_PUBLISH_MAP_INVALID'),
      );
    });
  });

  it('gives a qcow2 conversion of an image the same content hash and digests', async () => {
    await withTempDir(async (dir) => {
      const raw = join(dir, 'sample.raw');
      await writeSampleImage(raw, 9 * 1024 * 1024 + 8192);
      const qcow = join(dir, 'sample.qcow2');
      await convertImage(raw, qcow, { to: 'qcow2' });
      const a = await openBlockSource(raw);
      const b = await openBlockSource(qcow);
      try {
        assert.equal(a.contentHash, b.contentHash);
        assert.equal(a.blockCount, 19);
        const da = await blockDigests(a);
        const db = await blockDigests(b);
        for (const [i, d] of db)
          if (d !== ZERO_BLOCK_SHA256) assert.equal(da.get(i), d, `block ${i}`);
      } finally {
        await a.close();
        await b.close();
      }
    });
  });

  it('saves digests atomically and refuses hostile digest files', {
    skip: NEEDS_HOLES,
  }, async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'disk.raw');
      await writeBlocks(path, [1, 'zero', 'zero', 2, 'hole']);
      const src = await openBlockSource(path);
      const digests = await blockDigests(src);
      await src.close();
      const file = join(dir, 'digests', `${src.contentHash}.json`);
      await writeDigests(file, {
        blockCount: src.blockCount,
        contentHash: src.contentHash,
        digests,
      });
      const back = await readDigests(file);
      assert.equal(back.contentHash, src.contentHash);
      assert.deepEqual(
        [...back.digests].sort((a, b) => a[0] - b[0]),
        [...digests].sort((a, b) => a[0] - b[0]),
      );
      const good = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
      assert.deepEqual(good.zero, [[1, 2]]);
      const bad = async (doc: unknown) => {
        await writeFile(file, typeof doc === 'string' ? doc : JSON.stringify(doc));
        await assert.rejects(readDigests(file), (e) =>
          isFerryError(e, 'FERRY_PUBLISH_DIGESTS_INVALID'),
        );
      };
      await bad('{');
      await bad([]);
      await bad({ ...good, format: 'other' });
      await bad({ ...good, blockCount: -1 });
      await bad({ ...good, blockCount: 2 ** 40 });
      await bad({ ...good, sha256: { '99': sha256b64(Buffer.alloc(1)) } });
      await bad({ ...good, sha256: { '0': 'not a digest' } });
      await bad({ ...good, zero: [[0, 1e9]] });
      await bad({
        ...good,
        zero: [
          [1, 2],
          [2, 1],
        ],
      });
      await bad({ ...good, zero: [['a', 1]] });
      // Tampered digests no longer hash to the content hash.
      await bad({
        ...good,
        sha256: {
          '0': sha256b64(Buffer.alloc(3)),
          '3': (good.sha256 as Record<string, string>)['3'],
        },
      });
      await assert.rejects(readDigests(join(dir, 'nope.json')), (e) =>
        isFerryError(e, 'FERRY_PUBLISH_DIGESTS_INVALID'),
      );
    });
  });
});
