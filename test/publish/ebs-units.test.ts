import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isFerryError } from '../../src/errors/index.js';
import { AdaptiveLimit } from '../../src/publish/aws/adaptive-limit.js';
import type { AwsClients } from '../../src/publish/aws/clients.js';
import { planBlock, uploadSnapshot } from '../../src/publish/aws/ebs-upload.js';
import { ZERO_BLOCK_SHA256 } from '../../src/publish/block-source.js';
import type { BlockSource } from '../../src/publish/types.js';
import { MemoryCheckpoint, testPlacement } from '../helpers/publish.js';

describe('AdaptiveLimit', () => {
  it('halves once per epoch on throttling, grows back by one after a streak, and bounds requests in flight', async () => {
    const limit = new AdaptiveLimit(8);
    const epochs = await Promise.all(Array.from({ length: 8 }, () => limit.acquire()));
    let ninth = false;
    const waiting = limit.acquire().then(() => {
      ninth = true;
    });
    await new Promise((r) => setImmediate(r));
    assert.equal(ninth, false);
    // Eight requests throttled at once: one halving, not three.
    for (const e of epochs) limit.throttled(e);
    assert.equal(limit.limit, 4);
    for (let i = 0; i < 8; i++) limit.release();
    await waiting;
    assert.equal(ninth, true);
    limit.release();
    const e = await limit.acquire();
    limit.throttled(e);
    limit.release();
    assert.equal(limit.limit, 2);
    for (let i = 0; i < 2; i++) limit.succeeded();
    assert.equal(limit.limit, 3);
    for (let i = 0; i < 100; i++) limit.succeeded();
    assert.equal(limit.limit, 8);
    const aborted = AbortSignal.abort();
    const full = new AdaptiveLimit(1);
    await full.acquire();
    await assert.rejects(full.acquire(aborted));
  });
});

describe('planBlock', () => {
  const D = `${'x'.repeat(43)}=`;
  const E = `${'y'.repeat(43)}=`;
  const Z = ZERO_BLOCK_SHA256;
  it('sends data, zero data only when encrypted, and never holes, without a parent', () => {
    assert.deepEqual(planBlock(0, D, false, undefined), { send: true, digest: D, zeros: false });
    assert.deepEqual(planBlock(0, Z, false, undefined), { send: false });
    assert.deepEqual(planBlock(0, Z, true, undefined), { send: true, digest: Z, zeros: true });
    assert.deepEqual(planBlock(0, undefined, true, undefined), { send: false });
  });
  it('sends what differs from the parent, and zeros over its data', () => {
    const parent = new Map([
      [0, D],
      [1, Z],
    ]);
    assert.deepEqual(planBlock(0, D, false, parent), { send: false });
    assert.deepEqual(planBlock(0, E, false, parent), { send: true, digest: E, zeros: false });
    assert.deepEqual(planBlock(0, undefined, false, parent), {
      send: true,
      digest: Z,
      zeros: true,
    });
    assert.deepEqual(planBlock(0, Z, false, parent), { send: true, digest: Z, zeros: true });
    assert.deepEqual(planBlock(1, Z, true, parent), { send: false });
    assert.deepEqual(planBlock(1, undefined, true, parent), { send: false });
    assert.deepEqual(planBlock(2, Z, false, parent), { send: false });
    // An encrypted parent never wrote block 2: zeros must be written for it to read as zeros.
    assert.deepEqual(planBlock(2, Z, true, parent), { send: true, digest: Z, zeros: true });
  });
});

describe('uploadSnapshot input', () => {
  it('refuses a volume over 64 TiB before calling AWS', async () => {
    const size = 65 * 2 ** 40 + 1;
    const huge: BlockSource = {
      size,
      blockCount: Math.ceil(size / 524288),
      contentHash: '0'.repeat(64),
      blocks: async function* () {},
      readBlock: async () => {},
      close: async () => {},
    };
    const noCalls = new Proxy(
      {},
      {
        get: () => {
          throw new Error('no AWS call expected');
        },
      },
    ) as AwsClients;
    await assert.rejects(
      uploadSnapshot({
        clients: noCalls,
        placement: testPlacement('http://127.0.0.1:1'),
        source: huge,
        encrypted: false,
        clientToken: 't',
        description: 'd',
        tags: {},
        concurrency: 1,
        checkpoint: new MemoryCheckpoint(),
      }),
      (e) => isFerryError(e, 'FERRY_EBS_INPUT'),
    );
  });
});
