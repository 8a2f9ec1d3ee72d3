import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CompleteSnapshotCommand,
  EBSClient,
  GetSnapshotBlockCommand,
  ListSnapshotBlocksCommand,
  PutSnapshotBlockCommand,
  StartSnapshotCommand,
} from '@aws-sdk/client-ebs';
import { BLOCK_SIZE, blockReceiver } from '../../src/cloud/ebs/index.js';
import type { BodyHead } from '../../src/cloud/request-body.js';
import { TEST_CREDENTIALS, withCloud } from '../helpers/cloud.js';
import { block, linear, sha256, sha256b64 } from '../helpers/ebs.js';

function head(checksum: string | undefined, over: Partial<BodyHead> = {}): BodyHead {
  return {
    method: 'PUT',
    rawPath: '/snapshots/snap-0123456789abcdef0/blocks/7',
    header: (name) => (name === 'x-amz-checksum' ? checksum : undefined),
    length: BLOCK_SIZE,
    ...over,
  };
}

/** `data` cut into chunks of the given sizes (the rest as one last chunk). */
function chunks(data: Buffer, sizes: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (const n of sizes) {
    out.push(data.subarray(at, at + n));
    at += n;
  }
  if (at < data.length) out.push(data.subarray(at));
  return out;
}

describe('blockReceiver (PutSnapshotBlock bodies)', () => {
  it('compares a body with the copy its checksum names, and hands that copy on with its hash', () => {
    const known = block(1);
    const digest = sha256(known).toString('hex');
    const asked: string[] = [];
    const pick = blockReceiver((d) => {
      asked.push(d);
      return d === digest ? known : undefined;
    });
    const r = pick(head(sha256b64(known)));
    assert.ok(r !== undefined);
    // A copy of the bytes, in uneven chunks, as a socket delivers them.
    for (const c of chunks(Buffer.from(known), [1, 65535, 7, 100000])) r.write(c);
    const body = r.end();
    r.dispose();
    assert.deepEqual(asked, [digest]);
    assert.equal(body.bytes, known, 'the body is the known copy itself');
    assert.equal(body.hashed, true);
    assert.equal(body.sha256Hex(), digest);
  });

  it('gathers a body that differs from the named copy, keeping what matched before', () => {
    const known = block(2);
    const sent = Buffer.from(known);
    sent[300000] = (sent[300000] ?? 0) ^ 1;
    const pick = blockReceiver(() => known);
    for (const sizes of [[], [300000], [299999, 2], [300001], [BLOCK_SIZE - 1]]) {
      const r = pick(head(sha256b64(known)));
      assert.ok(r !== undefined);
      for (const c of chunks(sent, sizes)) r.write(c);
      const body = r.end();
      assert.ok(body.bytes.equals(sent), `chunks ${sizes.join(',')}`);
      assert.equal(body.hashed, false, 'a gathered body is hashed by whoever needs it');
      assert.equal(body.sha256Hex(), sha256(sent).toString('hex'));
      r.dispose();
    }
  });

  it('gathers a body whose checksum names no kept block, or is not a SHA-256', () => {
    const data = block(3);
    let calls = 0;
    const pick = blockReceiver(() => {
      calls++;
      return undefined;
    });
    for (const checksum of [sha256b64(data), 'not base64!', 'AAAA', undefined]) {
      const r = pick(head(checksum));
      assert.ok(r !== undefined);
      for (const c of chunks(data, [4096, 4096])) r.write(c);
      const body = r.end();
      assert.ok(body.bytes.equals(data));
      assert.equal(body.hashed, false);
      r.dispose();
    }
    assert.equal(calls, 1, 'only a well-formed SHA-256 is looked up');
  });

  it('ignores a copy of the wrong size, and a body longer than a block', () => {
    const data = block(4);
    const r = blockReceiver(() => data.subarray(0, 1000))(head(sha256b64(data)));
    assert.ok(r !== undefined);
    r.write(data);
    assert.equal(r.end().hashed, false);
    assert.throws(() => r.write(Buffer.alloc(1)), RangeError);
    r.dispose();
  });

  it('takes only PutSnapshotBlock bodies of one block', () => {
    const pick = blockReceiver(() => undefined);
    assert.equal(pick(head(undefined, { method: 'POST' })), undefined);
    assert.equal(pick(head(undefined, { rawPath: '/snapshots' })), undefined);
    assert.equal(pick(head(undefined, { rawPath: '/snapshots/completion/snap-1' })), undefined);
    assert.equal(pick(head(undefined, { length: BLOCK_SIZE - 1 })), undefined);
    assert.notEqual(pick(head(undefined)), undefined);
  });
});

describe('PutSnapshotBlock bodies through the endpoint', () => {
  it('stores a block once for two snapshots, refuses a changed copy, and reads every block back', async () => {
    await withCloud(async ({ url }) => {
      const ebs = new EBSClient({
        endpoint: url,
        region: 'us-east-1',
        credentials: TEST_CREDENTIALS,
        maxAttempts: 1,
      });
      const data = Array.from({ length: 6 }, (_, i) => block(100 + i));
      const put = (snapshot: string, index: number, bytes: Buffer, checksum = sha256b64(bytes)) =>
        ebs.send(
          new PutSnapshotBlockCommand({
            SnapshotId: snapshot,
            BlockIndex: index,
            BlockData: bytes,
            DataLength: bytes.length,
            Checksum: checksum,
            ChecksumAlgorithm: 'SHA256',
          }),
        );
      const snapshots: string[] = [];
      for (let s = 0; s < 2; s++) {
        const start = await ebs.send(new StartSnapshotCommand({ VolumeSize: 1, Timeout: 60 }));
        snapshots.push(start.SnapshotId!);
        // The first snapshot's blocks are new (gathered in reused buffers, all
        // in flight at once); the second's are copies of them (compared).
        await Promise.all(data.map((d, i) => put(start.SnapshotId!, i, d)));
      }
      // Bytes that differ from the block their checksum names, in the last byte
      // or the first: refused, and nothing is recorded for the index.
      for (const at of [BLOCK_SIZE - 1, 0]) {
        const forged = Buffer.from(data[0]!);
        forged[at] = (forged[at] ?? 0) ^ 0x80;
        await assert.rejects(put(snapshots[1]!, 9, forged, sha256b64(data[0]!)), (e: Error) => {
          assert.equal(e.name, 'ValidationException');
          return true;
        });
      }
      for (const snapshot of snapshots) {
        const done = await ebs.send(
          new CompleteSnapshotCommand({
            SnapshotId: snapshot,
            ChangedBlocksCount: data.length,
            Checksum: linear(data),
            ChecksumAlgorithm: 'SHA256',
            ChecksumAggregationMethod: 'LINEAR',
          }),
        );
        assert.equal(done.Status, 'completed');
        const list = await ebs.send(new ListSnapshotBlocksCommand({ SnapshotId: snapshot }));
        assert.deepEqual(
          list.Blocks?.map((b) => b.BlockIndex),
          data.map((_, i) => i),
        );
        for (const b of list.Blocks ?? []) {
          const got = await ebs.send(
            new GetSnapshotBlockCommand({
              SnapshotId: snapshot,
              BlockIndex: b.BlockIndex!,
              BlockToken: b.BlockToken!,
            }),
          );
          const bytes = Buffer.from(await got.BlockData!.transformToByteArray());
          assert.ok(bytes.equals(data[b.BlockIndex!]!), `${snapshot} block ${b.BlockIndex}`);
        }
      }
    });
  });
});
