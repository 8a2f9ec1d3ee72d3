import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isFerryError } from '../../src/errors/index.js';
import type { AwsClients } from '../../src/publish/aws/clients.js';
import { planBlock, uploadSnapshot } from '../../src/publish/aws/ebs-upload.js';
import { ZERO_BLOCK_SHA256 } from '../../src/publish/block-source.js';
import type { BlockSource } from '../../src/publish/types.js';
import { MemoryCheckpoint, testPlacement } from '../helpers/publish.js';

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
