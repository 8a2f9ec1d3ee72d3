/**
 * kill -9 of `ferry cloud serve` while SDK clients upload a snapshot: after a
 * restart on the same data directory every acknowledged write is there (the
 * KMS key made before, the pending snapshot and its blocks), a client that
 * re-sends what was not acknowledged completes the snapshot with the LINEAR
 * checksum, and every block reads back whole.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  CompleteSnapshotCommand,
  EBSClient,
  GetSnapshotBlockCommand,
  ListSnapshotBlocksCommand,
  PutSnapshotBlockCommand,
  StartSnapshotCommand,
} from '@aws-sdk/client-ebs';
import { CreateKeyCommand, DescribeKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { TEST_CREDENTIALS } from '../helpers/cloud.js';
import { block, linear, sha256b64 } from '../helpers/ebs.js';
import { withTempDir } from '../helpers/qemu.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const BLOCKS = 96;

async function serve(data: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    [CLI, 'cloud', 'serve', '--data', data, '--listen', '127.0.0.1:0', '--output', 'json'],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString('utf8');
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve((JSON.parse(out.slice(0, nl)) as { endpoint: string }).endpoint);
    });
    child.once('exit', (code) => reject(new Error(`ferry cloud serve exited with ${code}`)));
  });
  return { child, url };
}

const clients = (url: string) => {
  const config = {
    endpoint: url,
    region: 'us-east-1',
    credentials: TEST_CREDENTIALS,
    maxAttempts: 1,
  };
  return { ebs: new EBSClient(config), kms: new KMSClient(config) };
};

function put(id: string, index: number) {
  const data = block(index + 1);
  return new PutSnapshotBlockCommand({
    SnapshotId: id,
    BlockIndex: index,
    BlockData: data,
    DataLength: data.length,
    Checksum: sha256b64(data),
    ChecksumAlgorithm: 'SHA256',
  });
}

describe('cloud: kill -9 of the server', () => {
  it('mid-upload loses nothing acknowledged and leaves no half-written block', async () => {
    await withTempDir(async (dir) => {
      const first = await serve(dir);
      const a = clients(first.url);
      const key = await a.kms.send(new CreateKeyCommand({ Description: 'before the crash' }));
      const snap = await a.ebs.send(new StartSnapshotCommand({ VolumeSize: 1, Timeout: 60 }));
      const id = snap.SnapshotId ?? '';
      const acked = new Set<number>();
      let next = 0;
      const exited = new Promise((r) => first.child.once('exit', r));
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (next < BLOCKS) {
            const index = next++;
            try {
              await a.ebs.send(put(id, index));
              acked.add(index);
              if (acked.size === 30) first.child.kill('SIGKILL');
            } catch {
              return; // the server is gone
            }
          }
        }),
      );
      await exited;
      assert.ok(acked.size >= 30 && acked.size < BLOCKS, `acknowledged ${acked.size}`);
      a.ebs.destroy();
      a.kms.destroy();

      const second = await serve(dir);
      const b = clients(second.url);
      try {
        const again = await b.kms.send(
          new DescribeKeyCommand({ KeyId: key.KeyMetadata?.KeyId ?? '' }),
        );
        assert.equal(again.KeyMetadata?.Description, 'before the crash');
        // The snapshot is still pending: re-send what was not acknowledged, then complete.
        for (let i = 0; i < BLOCKS; i++) if (!acked.has(i)) await b.ebs.send(put(id, i));
        const all = Array.from({ length: BLOCKS }, (_, i) => block(i + 1));
        const done = await b.ebs.send(
          new CompleteSnapshotCommand({
            SnapshotId: id,
            ChangedBlocksCount: BLOCKS,
            Checksum: linear(all),
            ChecksumAlgorithm: 'SHA256',
            ChecksumAggregationMethod: 'LINEAR',
          }),
        );
        assert.equal(done.Status, 'completed');
        const listed = await b.ebs.send(new ListSnapshotBlocksCommand({ SnapshotId: id }));
        assert.equal(listed.Blocks?.length, BLOCKS);
        for (const entry of listed.Blocks ?? []) {
          const got = await b.ebs.send(
            new GetSnapshotBlockCommand({
              SnapshotId: id,
              BlockIndex: entry.BlockIndex ?? -1,
              BlockToken: entry.BlockToken ?? '',
            }),
          );
          const bytes = Buffer.from((await got.BlockData?.transformToByteArray()) ?? []);
          assert.ok(
            bytes.equals(all[entry.BlockIndex ?? -1] ?? Buffer.alloc(0)),
            `block ${entry.BlockIndex}`,
          );
        }
      } finally {
        b.ebs.destroy();
        b.kms.destroy();
        second.child.kill('SIGTERM');
        await new Promise((r) => second.child.once('exit', r));
      }
    });
  });
});
