import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  DescribeImagesCommand,
  DescribeSnapshotAttributeCommand,
  DescribeSnapshotsCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { CreateKeyCommand } from '@aws-sdk/client-kms';
import { isFerryError } from '../../src/errors/index.js';
import { deleteSnapshot, uploadSnapshot } from '../../src/publish/aws/ebs-upload.js';
import { findParent } from '../../src/publish/aws/find-parent.js';
import {
  deregisterImage,
  findImage,
  registerImage,
  shareImage,
  tagResources,
} from '../../src/publish/aws/register.js';
import { type BlockDigests, blockDigests } from '../../src/publish/block-digests.js';
import { openBlockSource } from '../../src/publish/block-source.js';
import { TAG } from '../../src/publish/types.js';
import { withCloud } from '../helpers/cloud.js';
import { MemoryCheckpoint, testClients, testPlacement, writeBlocks } from '../helpers/publish.js';
import { withTempDir } from '../helpers/qemu.js';

const OTHER = '111111111111';
const OTHER_KEY = { accessKeyId: 'AKIAPUBLISHOTHER01', secretAccessKey: 'other-secret' };
const config = { accounts: [{ id: OTHER, ...OTHER_KEY }] };

describe('register, share, deregister', () => {
  it('registers an hvm image idempotently by name, tags and shares it, and deregisters before deleting', async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'disk.raw');
      await writeBlocks(path, [1, 2, 'hole', 3]);
      await withCloud(
        async ({ url }) => {
          const clients = testClients(url);
          const source = await openBlockSource(path);
          try {
            const upload = (token: string) =>
              uploadSnapshot({
                clients,
                placement: testPlacement(url),
                source,
                encrypted: false,
                clientToken: token,
                description: 'ferry test',
                tags: { [TAG.stream]: 'web' },
                concurrency: 2,
                checkpoint: new MemoryCheckpoint(),
              });
            const { snapshotId } = await upload('t1');
            const input = {
              name: 'web-0123456789ab',
              snapshotId,
              architecture: 'x86_64' as const,
              bootMode: 'uefi' as const,
              enaSupport: true,
              rootDeviceName: '/dev/xvda',
              description: 'web at 0123456789ab',
              tags: { [TAG.stream]: 'web', [TAG.revision]: '0123456789abcdef' },
            };
            const imageId = await registerImage(clients, input);
            // A repeat (a lost answer) finds the same image by name.
            assert.equal(await registerImage(clients, input), imageId);
            const other = await upload('t2');
            await assert.rejects(
              registerImage(clients, { ...input, snapshotId: other.snapshotId }),
              (e) => isFerryError(e, 'FERRY_AMI_NAME_TAKEN'),
            );
            const d = await clients.ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }));
            const image = d.Images![0]!;
            assert.equal(image.VirtualizationType, 'hvm');
            assert.equal(image.Architecture, 'x86_64');
            assert.equal(image.BootMode, 'uefi');
            assert.equal(image.EnaSupport, true);
            assert.equal(image.RootDeviceName, '/dev/xvda');

            const got = await findImage(clients, 'web', '0123456789abcdef');
            assert.equal(got?.imageId, imageId);
            assert.deepEqual(got?.snapshotIds, [snapshotId]);
            assert.equal(await findImage(clients, 'web', 'fedcba9876543210'), undefined);
            await tagResources(clients, [imageId, snapshotId], { [TAG.run]: 'run-1' });
            assert.equal(
              (await findImage(clients, 'web', '0123456789abcdef'))?.tags[TAG.run],
              'run-1',
            );

            await shareImage(clients, imageId, [snapshotId], [OTHER]);
            const theirs = new EC2Client({
              endpoint: url,
              region: 'us-east-1',
              credentials: OTHER_KEY,
            });
            try {
              const seen = await theirs.send(
                new DescribeImagesCommand({ ExecutableUsers: ['self'] }),
              );
              assert.deepEqual(
                seen.Images?.map((i) => i.ImageId),
                [imageId],
              );
            } finally {
              theirs.destroy();
            }
            const perm = await clients.ec2.send(
              new DescribeSnapshotAttributeCommand({
                SnapshotId: snapshotId,
                Attribute: 'createVolumePermission',
              }),
            );
            assert.deepEqual(
              perm.CreateVolumePermissions?.map((p) => p.UserId),
              [OTHER],
            );

            // The snapshot cannot go first: the image still uses it.
            await assert.rejects(
              deleteSnapshot(clients, snapshotId),
              (e) =>
                isFerryError(e, 'FERRY_AWS_REQUEST') &&
                e.details.awsCode === 'InvalidSnapshot.InUse',
            );
            const gone = await deregisterImage(clients, imageId);
            assert.deepEqual(gone, { deregistered: true, deletedSnapshots: [snapshotId] });
            const left = await clients.ec2.send(
              new DescribeSnapshotsCommand({ OwnerIds: ['self'] }),
            );
            assert.deepEqual(
              left.Snapshots?.map((s) => s.SnapshotId),
              [other.snapshotId],
            );
            assert.equal(await findImage(clients, 'web', '0123456789abcdef'), undefined);
            // Cleanup is idempotent.
            assert.equal(await deleteSnapshot(clients, snapshotId), false);
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

describe('findParent', () => {
  it("picks the stream's newest completed snapshot whose digests are at hand and whose encryption matches", async () => {
    await withTempDir(async (dir) => {
      await withCloud(async ({ url, clock }) => {
        const clients = testClients(url);
        const key = await clients.kms.send(new CreateKeyCommand({}));
        const digestsByHash = new Map<string, BlockDigests>();
        let seed = 1;
        const make = async (stream: string, encrypted: boolean, kmsKeyId?: string, keep = true) => {
          const path = join(dir, `img-${seed}.raw`);
          await writeBlocks(path, [seed++, seed++]);
          const source = await openBlockSource(path);
          try {
            if (keep) digestsByHash.set(source.contentHash, await blockDigests(source));
            clock.offset += 60_000;
            const r = await uploadSnapshot({
              clients,
              placement: testPlacement(url),
              source,
              encrypted,
              ...(kmsKeyId === undefined ? {} : { kmsKeyId }),
              clientToken: `t-${seed}`,
              description: 'ferry test',
              tags: { [TAG.stream]: stream },
              concurrency: 2,
              checkpoint: new MemoryCheckpoint(),
            });
            return r.snapshotId;
          } finally {
            await source.close();
          }
        };
        try {
          const plainOld = await make('web', false);
          const plainNew = await make('web', false);
          await make('web', false, undefined, false); // newest, but its digests are gone
          const encDefault = await make('web', true);
          const encKey = await make('web', true, key.KeyMetadata!.Arn!);
          await make('api', false);
          const has = async (hash: string) => digestsByHash.get(hash);
          const pick = async (encrypted: boolean, kmsKeyArn?: string, stream = 'web') =>
            (
              await findParent(
                clients,
                { stream, encrypted, ...(kmsKeyArn === undefined ? {} : { kmsKeyArn }) },
                has,
              )
            )?.snapshotId;
          assert.equal(await pick(false), plainNew);
          assert.equal(await pick(true), encDefault);
          assert.equal(await pick(true, key.KeyMetadata!.KeyId!), encKey);
          assert.equal(await pick(false, undefined, 'db'), undefined);
          const found = await findParent(clients, { stream: 'web', encrypted: false }, has);
          assert.ok(found !== undefined && found.digests.size === 2);
          // Without its digests, the older one is the parent.
          const withoutNew = async (hash: string) =>
            (await has(hash)) === undefined || found.contentHash === hash ? undefined : has(hash);
          assert.equal(
            (await findParent(clients, { stream: 'web', encrypted: false }, withoutNew))
              ?.snapshotId,
            plainOld,
          );
        } finally {
          clients.destroy();
        }
      });
    });
  });
});
