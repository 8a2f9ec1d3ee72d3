import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ListSnapshotBlocksCommand } from '@aws-sdk/client-ebs';
import { DescribeSnapshotsCommand } from '@aws-sdk/client-ec2';
import { CreateKeyCommand, DescribeKeyCommand } from '@aws-sdk/client-kms';
import { convertImage } from '../../src/disk/index.js';
import { writeSampleImage } from '../../src/disk/sample-image.js';
import { isFerryError } from '../../src/errors/index.js';
import { AdaptiveLimit } from '../../src/publish/adaptive-limit.js';
import { type AwsClients, awsClients } from '../../src/publish/aws/clients.js';
import {
  type UploadSnapshotOptions,
  uploadSnapshot,
  waitCompleted,
} from '../../src/publish/aws/ebs-upload.js';
import { verifySnapshot } from '../../src/publish/aws/verify.js';
import { blockDigests } from '../../src/publish/block-digests.js';
import { openBlockSource } from '../../src/publish/block-source.js';
import { BLOCK_SIZE, type BlockSource, TAG } from '../../src/publish/types.js';
import { withCloud } from '../helpers/cloud.js';
import {
  events,
  MemoryCheckpoint,
  NEEDS_HOLES,
  testClients,
  testPlacement,
  writeBlocks,
} from '../helpers/publish.js';
import { withTempDir } from '../helpers/qemu.js';

function options(
  url: string,
  clients: AwsClients,
  source: BlockSource,
  extra: Partial<UploadSnapshotOptions> = {},
): UploadSnapshotOptions {
  return {
    clients,
    placement: testPlacement(url),
    source,
    encrypted: false,
    clientToken: `token-${source.contentHash.slice(0, 16)}-${Math.random()}`,
    description: 'ferry test',
    tags: { [TAG.stream]: 'web' },
    concurrency: 4,
    checkpoint: new MemoryCheckpoint(),
    ...extra,
  };
}

async function listed(clients: AwsClients, snapshotId: string): Promise<number[]> {
  const r = await clients.ebs.send(new ListSnapshotBlocksCommand({ SnapshotId: snapshotId }));
  return (r.Blocks ?? []).map((b) => b.BlockIndex!);
}

describe('uploadSnapshot', () => {
  it('uploads a sample image and a qcow2 of it, and both verify against the source', async () => {
    await withTempDir(async (dir) => {
      const raw = join(dir, 'sample.raw');
      await writeSampleImage(raw, 12 * 1024 * 1024 + 4096);
      const qcow = join(dir, 'sample.qcow2');
      await convertImage(raw, qcow, { to: 'qcow2' });
      await withCloud(async ({ url }) => {
        const clients = testClients(url);
        try {
          for (const path of [raw, qcow]) {
            const source = await openBlockSource(path);
            try {
              const ev = events();
              const checkpoint = new MemoryCheckpoint();
              const r = await uploadSnapshot(
                options(url, clients, source, { checkpoint, onEvent: ev.on }),
              );
              assert.equal(r.start, 'new');
              assert.equal(r.blocksSent + r.blocksSkipped, source.blockCount);
              assert.ok(r.blocksSent > 10);
              assert.equal(r.bytesSent, r.blocksSent * BLOCK_SIZE);
              assert.equal(checkpoint.value?.snapshotId, r.snapshotId);
              assert.ok(ev.list.some((e) => e.type === 'blocks'));
              const d = await clients.ec2.send(
                new DescribeSnapshotsCommand({ SnapshotIds: [r.snapshotId] }),
              );
              const snap = d.Snapshots![0]!;
              assert.equal(snap.State, 'completed');
              assert.equal(snap.VolumeSize, 1);
              const tags = Object.fromEntries((snap.Tags ?? []).map((t) => [t.Key, t.Value]));
              assert.equal(tags[TAG.contentHash], source.contentHash);
              assert.equal(tags[TAG.stream], 'web');
              const v = await verifySnapshot(clients, r.snapshotId, source);
              assert.deepEqual(v, {
                blocks: r.changedBlocks,
                mismatches: [],
                missing: [],
                extra: [],
                ok: true,
              });
              // A second call with the finished checkpoint returns the snapshot, sending nothing.
              const again = await uploadSnapshot(options(url, clients, source, { checkpoint }));
              assert.equal(again.start, 'completed');
              assert.equal(again.snapshotId, r.snapshotId);
              assert.equal(again.blocksSent, 0);
            } finally {
              await source.close();
            }
          }
        } finally {
          clients.destroy();
        }
      });
    });
  });

  it('skips holes always and zero data only when unencrypted; verify sees a changed source', {
    skip: NEEDS_HOLES,
  }, async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'disk.raw');
      await writeBlocks(path, [1, 'hole', 'zero', 2, 'zero', 'hole', 3, 'hole']);
      await withCloud(async ({ url }) => {
        const clients = testClients(url);
        const source = await openBlockSource(path);
        try {
          const plain = await uploadSnapshot(options(url, clients, source));
          assert.equal(plain.blocksSent, 3);
          assert.equal(plain.blocksSkipped, 5);
          assert.deepEqual(await listed(clients, plain.snapshotId), [0, 3, 6]);
          const enc = await uploadSnapshot(options(url, clients, source, { encrypted: true }));
          assert.equal(enc.blocksSent, 5);
          assert.deepEqual(await listed(clients, enc.snapshotId), [0, 2, 3, 4, 6]);
          const d = await clients.ec2.send(
            new DescribeSnapshotsCommand({ SnapshotIds: [enc.snapshotId] }),
          );
          assert.equal(d.Snapshots![0]!.Encrypted, true);
          assert.ok((await verifySnapshot(clients, enc.snapshotId, source)).ok);
          // A source that knows no digests: the uploader reads and hashes, and finds the zero data itself.
          const blind: BlockSource = {
            size: source.size,
            blockCount: source.blockCount,
            contentHash: source.contentHash,
            blocks: async function* () {
              for await (const b of source.blocks()) yield { index: b.index, kind: b.kind };
            },
            readBlock: (i, into, signal) => source.readBlock(i, into, signal),
            close: async () => {},
          };
          const read = await uploadSnapshot(options(url, clients, blind));
          assert.equal(read.blocksSent, 3);
          assert.deepEqual(await listed(clients, read.snapshotId), [0, 3, 6]);
          assert.ok((await verifySnapshot(clients, read.snapshotId, blind)).ok);
          // Against other digests: block 3 differs, block 6 is not expected, block 7 is missing.
          const digests = new Map(await blockDigests(source));
          const b0 = digests.get(0)!;
          digests.set(3, b0);
          digests.delete(6);
          digests.set(7, b0);
          const v = await verifySnapshot(clients, plain.snapshotId, digests);
          assert.deepEqual(
            { mismatches: v.mismatches, missing: v.missing, extra: v.extra, ok: v.ok },
            { mismatches: [3], missing: [7], extra: [6], ok: false },
          );
        } finally {
          await source.close();
          clients.destroy();
        }
      });
    });
  });

  it('encrypts with the default key and with a created KMS key (by alias)', async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'disk.raw');
      await writeBlocks(path, [1, 2, 'hole', 3]);
      await withCloud(async ({ url }) => {
        const clients = testClients(url);
        const source = await openBlockSource(path);
        try {
          const key = await clients.kms.send(new CreateKeyCommand({ Description: 'ferry' }));
          const arn = key.KeyMetadata!.Arn!;
          const def = await clients.kms.send(new DescribeKeyCommand({ KeyId: 'alias/aws/ebs' }));
          const a = await uploadSnapshot(options(url, clients, source, { encrypted: true }));
          const b = await uploadSnapshot(
            options(url, clients, source, { encrypted: true, kmsKeyId: key.KeyMetadata!.KeyId! }),
          );
          const d = await clients.ec2.send(
            new DescribeSnapshotsCommand({ SnapshotIds: [a.snapshotId, b.snapshotId] }),
          );
          const byId = new Map(d.Snapshots!.map((s) => [s.SnapshotId, s]));
          assert.equal(byId.get(a.snapshotId)!.KmsKeyId, def.KeyMetadata!.Arn);
          assert.equal(byId.get(b.snapshotId)!.KmsKeyId, arn);
          assert.ok((await verifySnapshot(clients, b.snapshotId, source)).ok);
        } finally {
          await source.close();
          clients.destroy();
        }
      });
    });
  });

  it('sends only changed blocks to a child, writes zeros where the parent had data, and reads back identically', {
    skip: NEEDS_HOLES,
  }, async () => {
    await withTempDir(async (dir) => {
      const v1 = join(dir, 'v1.raw');
      const v2 = join(dir, 'v2.raw');
      await writeBlocks(v1, [1, 2, 3, 4, 'hole', 6, 7, 'zero']);
      // 1 changed, 2 became a hole, 3 became zeros, 4 new, 7 a new block where zeros were.
      await writeBlocks(v2, [1, 20, 'hole', 'zero', 40, 6, 7, 8]);
      await withCloud(async ({ url }) => {
        const clients = testClients(url);
        const s1 = await openBlockSource(v1);
        const s2 = await openBlockSource(v2);
        try {
          for (const encrypted of [false, true]) {
            const parent = await uploadSnapshot(options(url, clients, s1, { encrypted }));
            const child = await uploadSnapshot(
              options(url, clients, s2, {
                encrypted,
                parent: { snapshotId: parent.snapshotId, digests: await blockDigests(s1) },
              }),
            );
            assert.equal(child.blocksSent, 5, `encrypted ${encrypted}`);
            assert.deepEqual(await listed(clients, child.snapshotId), [0, 1, 2, 3, 4, 5, 6, 7]);
            const v = await verifySnapshot(clients, child.snapshotId, s2);
            assert.deepEqual(v.mismatches, []);
            assert.deepEqual(v.missing, []);
            assert.deepEqual(v.extra, []);
            const d = await clients.ec2.send(
              new DescribeSnapshotsCommand({ SnapshotIds: [child.snapshotId] }),
            );
            assert.equal(d.Snapshots![0]!.Encrypted, encrypted);
            // The other encryption cannot be a child of it.
            await assert.rejects(
              uploadSnapshot(
                options(url, clients, s2, {
                  encrypted: !encrypted,
                  parent: { snapshotId: parent.snapshotId, digests: await blockDigests(s1) },
                }),
              ),
              (e) => isFerryError(e, 'FERRY_EBS_INPUT'),
            );
          }
          // A parent with a larger volume cannot have a smaller child.
          const big = join(dir, 'big.raw');
          await writeBlocks(big, [...Array.from({ length: 2048 }, () => 'hole' as const), 9]);
          const sb = await openBlockSource(big);
          try {
            const parent = await uploadSnapshot(options(url, clients, sb));
            await assert.rejects(
              uploadSnapshot(
                options(url, clients, s2, {
                  parent: { snapshotId: parent.snapshotId, digests: await blockDigests(sb) },
                }),
              ),
              (e) => isFerryError(e, 'FERRY_EBS_INPUT') && e.details.parentGiB === 2,
            );
          } finally {
            await sb.close();
          }
          // A smaller image in the same volume size: the parent's blocks past its end become zeros.
          const v3 = join(dir, 'v3.raw');
          await writeBlocks(v3, [1, 20, 'hole', 'zero', 40]);
          const s3 = await openBlockSource(v3);
          try {
            const parent = await uploadSnapshot(options(url, clients, s2));
            const child = await uploadSnapshot(
              options(url, clients, s3, {
                parent: { snapshotId: parent.snapshotId, digests: await blockDigests(s2) },
              }),
            );
            assert.equal(child.blocksSent, 3);
            assert.ok((await verifySnapshot(clients, child.snapshotId, s3)).ok);
          } finally {
            await s3.close();
          }
        } finally {
          await s1.close();
          await s2.close();
          clients.destroy();
        }
      });
    });
  });

  it('resumes after an abort mid-upload, sending only the rest', async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'disk.raw');
      const specs = Array.from({ length: 40 }, (_, i) => i + 1);
      await writeBlocks(path, specs);
      await withCloud(async ({ url }) => {
        const clients = testClients(url);
        const source = await openBlockSource(path);
        try {
          const checkpoint = new MemoryCheckpoint();
          const controller = new AbortController();
          let seen = 0;
          const base = options(url, clients, source, {
            checkpoint,
            concurrency: 2,
            checkpointEvery: { blocks: 4 },
            onEvent: (e) => {
              if (e.type === 'blocks') {
                seen = e.sent;
                if (e.sent >= 12) controller.abort();
              }
            },
          });
          await assert.rejects(uploadSnapshot({ ...base, signal: controller.signal }), (e) =>
            isFerryError(e, 'FERRY_ABORTED'),
          );
          const cp = checkpoint.value!;
          const doneBefore = cp.watermark + cp.done.length;
          assert.ok(seen >= 12 && doneBefore >= 12 && doneBefore < 40, `done ${doneBefore}`);
          const d = await clients.ec2.send(
            new DescribeSnapshotsCommand({ SnapshotIds: [cp.snapshotId] }),
          );
          assert.equal(d.Snapshots![0]!.State, 'pending');
          assert.equal(cp.contentHash, source.contentHash);
          // The checkpoint is not continued with another image.
          checkpoint.value = { ...cp, contentHash: 'f'.repeat(64) };
          await assert.rejects(
            uploadSnapshot({ ...base, onEvent: () => {} }),
            (e) => isFerryError(e, 'FERRY_EBS_SNAPSHOT_RESTART') && e.details.deleted === false,
          );
          checkpoint.value = cp;
          const r = await uploadSnapshot({ ...base, onEvent: () => {} });
          assert.equal(r.start, 'resumed');
          assert.equal(r.snapshotId, cp.snapshotId);
          assert.equal(r.blocksResumed, doneBefore);
          assert.equal(r.blocksSent, 40 - doneBefore);
          assert.equal(r.changedBlocks, 40);
          assert.ok((await verifySnapshot(clients, r.snapshotId, source)).ok);
        } finally {
          await source.close();
          clients.destroy();
        }
      });
    });
  });

  it('retries "snapshot does not exist" after StartSnapshot, and restarts a snapshot that timed out', async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'disk.raw');
      await writeBlocks(path, [1, 2, 3, 4]);
      await withCloud(async ({ url, clock }) => {
        const clients = testClients(url);
        const source = await openBlockSource(path);
        try {
          // The first puts fail as EBS answers right after StartSnapshot:
          // through the SDK (a middleware) and through block-put.ts (a wrapper).
          const notYet = () =>
            Object.assign(new Error('The snapshot does not exist.'), {
              name: 'ResourceNotFoundException',
              $metadata: { httpStatusCode: 404 },
            });
          const sdkClients = awsClients(testPlacement(url), {
            concurrency: 8,
            directBlocks: false,
          });
          assert.equal(sdkClients.putBlock, undefined);
          let refused = 0;
          sdkClients.ebs.middlewareStack.add(
            (next, context) => async (args) => {
              if (context.commandName === 'PutSnapshotBlockCommand' && refused < 3) {
                refused++;
                throw notYet();
              }
              return next(args);
            },
            { step: 'initialize', name: 'notYet' },
          );
          let viaSdk = '';
          try {
            const r0 = await uploadSnapshot(options(url, sdkClients, source));
            assert.equal(refused, 3);
            assert.equal(r0.blocksSent, 4);
            assert.ok((await verifySnapshot(sdkClients, r0.snapshotId, source)).ok);
            viaSdk = r0.snapshotId;
          } finally {
            sdkClients.destroy();
          }
          const direct = clients.putBlock!;
          let refusedDirect = 0;
          const r = await uploadSnapshot(
            options(
              url,
              {
                ...clients,
                putBlock: async (input) => {
                  if (refusedDirect < 3) {
                    refusedDirect++;
                    throw notYet();
                  }
                  return direct(input);
                },
              },
              source,
            ),
          );
          assert.equal(refusedDirect, 3);
          assert.equal(r.blocksSent, 4);
          assert.ok((await verifySnapshot(clients, r.snapshotId, source)).ok);

          // A pending snapshot left alone past its Timeout goes to error: resuming deletes it and asks for a restart.
          const checkpoint = new MemoryCheckpoint();
          const controller = new AbortController();
          await assert.rejects(
            uploadSnapshot(
              options(url, clients, source, {
                checkpoint,
                timeoutMinutes: 10,
                signal: controller.signal,
                concurrency: 1,
                checkpointEvery: { blocks: 1 },
                onEvent: (e) => {
                  if (e.type === 'blocks' && e.sent >= 1) controller.abort();
                },
              }),
            ),
            (e) => isFerryError(e, 'FERRY_ABORTED'),
          );
          const stale = checkpoint.value!.snapshotId;
          await assert.rejects(
            waitCompleted(clients, stale, 300),
            (e) => isFerryError(e, 'FERRY_EBS_SNAPSHOT_FAILED') && e.details.state === 'pending',
          );
          clock.offset += 11 * 60_000;
          await assert.rejects(
            waitCompleted(clients, stale, 60_000),
            (e) => isFerryError(e, 'FERRY_EBS_SNAPSHOT_FAILED') && e.details.state === 'error',
          );
          await assert.rejects(
            uploadSnapshot(options(url, clients, source, { checkpoint })),
            (e) =>
              isFerryError(e, 'FERRY_EBS_SNAPSHOT_RESTART') &&
              e.details.state === 'error' &&
              e.details.deleted === true &&
              e.details.snapshotId === stale,
          );
          const left = await clients.ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }));
          assert.deepEqual(
            left.Snapshots?.map((s) => s.SnapshotId).sort(),
            [viaSdk, r.snapshotId].sort(),
          );
          // A snapshot that is gone asks for a restart too; a malformed checkpoint is refused.
          checkpoint.value = { snapshotId: 'snap-0123456789abcdef0', watermark: 0, done: [] };
          await assert.rejects(
            uploadSnapshot(options(url, clients, source, { checkpoint })),
            (e) => isFerryError(e, 'FERRY_EBS_SNAPSHOT_RESTART') && e.details.state === 'missing',
          );
          checkpoint.value = { snapshotId: 'nope', watermark: -1, done: [] };
          await assert.rejects(uploadSnapshot(options(url, clients, source, { checkpoint })), (e) =>
            isFerryError(e, 'FERRY_EBS_INPUT'),
          );
        } finally {
          await source.close();
          clients.destroy();
        }
      });
    });
  });

  it('completes under throttling, halving its concurrency and saying so', async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'disk.raw');
      await writeBlocks(
        path,
        Array.from({ length: 30 }, (_, i) => i + 1),
      );
      const config = { ebs: { rateLimits: { PutSnapshotBlock: { perSecond: 40, burst: 4 } } } };
      await withCloud(
        async ({ url }) => {
          const clients = testClients(url);
          const source = await openBlockSource(path);
          try {
            const ev = events();
            // The placement's shared limit feels the throttling.
            const changes: string[] = [];
            const limit = new AdaptiveLimit({
              max: 8,
              onChange: (_, outcome) => changes.push(outcome),
            });
            const r = await uploadSnapshot(
              options(url, clients, source, { concurrency: 8, limit, onEvent: ev.on }),
            );
            assert.ok(changes.includes('throttled'));
            assert.equal(r.blocksSent, 30);
            const throttled = ev.list.filter((e) => e.type === 'throttled');
            assert.ok(throttled.length > 0);
            assert.ok(throttled.every((e) => e.type === 'throttled' && e.concurrency < 8));
            assert.ok((await verifySnapshot(clients, r.snapshotId, source)).ok);
          } finally {
            await source.close();
            clients.destroy();
          }
        },
        { config },
      );
    });
  });
});
