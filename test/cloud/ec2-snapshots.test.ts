import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CopySnapshotCommand,
  DeleteSnapshotCommand,
  DescribeSnapshotAttributeCommand,
  DescribeSnapshotsCommand,
  ModifySnapshotAttributeCommand,
  ResetSnapshotAttributeCommand,
} from '@aws-sdk/client-ec2';
import { CreateKeyCommand, DescribeKeyCommand, PutKeyPolicyCommand } from '@aws-sdk/client-kms';
import { withCloud } from '../helpers/cloud.js';
import {
  EC2_CONFIG,
  ec2,
  ec2Code,
  kms,
  makeSnapshot,
  OTHER,
  OTHER_KEY,
  OWNER,
  THIRD_KEY,
} from '../helpers/ec2.js';

describe('cloud: EC2 snapshots', () => {
  it("DescribeSnapshots lists the account's snapshots by id, owner and filters, in pages", async () => {
    await withCloud(async ({ url }) => {
      const a = await makeSnapshot(url, { size: 2, description: 'root of debian' });
      const b = await makeSnapshot(url, { size: 8, encrypted: true, description: 'data' });
      const pending = await makeSnapshot(url, { complete: false });
      const client = ec2(url);
      const all = await client.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }));
      assert.deepEqual(all.Snapshots?.map((s) => s.SnapshotId).sort(), [a, b, pending].sort());
      const one = all.Snapshots!.find((s) => s.SnapshotId === b)!;
      assert.equal(one.OwnerId, OWNER);
      assert.equal(one.VolumeSize, 8);
      assert.equal(one.Encrypted, true);
      assert.match(one.KmsKeyId ?? '', /^arn:aws:kms:us-east-1:000000000000:key\//);
      assert.equal(one.State, 'completed');
      assert.equal(one.Progress, '100%');
      assert.ok(one.StartTime instanceof Date);
      assert.equal(all.Snapshots!.find((s) => s.SnapshotId === pending)?.State, 'pending');

      const byId = await client.send(new DescribeSnapshotsCommand({ SnapshotIds: [a] }));
      assert.equal(byId.Snapshots?.[0]?.Description, 'root of debian');
      const filtered = await client.send(
        new DescribeSnapshotsCommand({
          Filters: [
            { Name: 'description', Values: ['root*', 'nothing'] },
            { Name: 'volume-size', Values: ['2'] },
          ],
        }),
      );
      assert.deepEqual(
        filtered.Snapshots?.map((s) => s.SnapshotId),
        [a],
      );
      const enc = await client.send(
        new DescribeSnapshotsCommand({ Filters: [{ Name: 'encrypted', Values: ['true'] }] }),
      );
      assert.deepEqual(
        enc.Snapshots?.map((s) => s.SnapshotId),
        [b],
      );
      const status = await client.send(
        new DescribeSnapshotsCommand({ Filters: [{ Name: 'status', Values: ['pend?ng'] }] }),
      );
      assert.deepEqual(
        status.Snapshots?.map((s) => s.SnapshotId),
        [pending],
      );

      // Paging: 5 more snapshots, pages of 5 that cover everything once.
      for (let i = 0; i < 5; i++) await makeSnapshot(url, { seed: i });
      const seen: string[] = [];
      let token: string | undefined;
      let pages = 0;
      do {
        const page = await client.send(
          new DescribeSnapshotsCommand({ MaxResults: 5, ...(token ? { NextToken: token } : {}) }),
        );
        seen.push(...(page.Snapshots ?? []).map((s) => s.SnapshotId!));
        token = page.NextToken;
        pages++;
      } while (token !== undefined);
      assert.equal(pages, 2);
      assert.equal(new Set(seen).size, 8);
      await assert.rejects(
        client.send(new DescribeSnapshotsCommand({ MaxResults: 4 })),
        ec2Code('InvalidParameterCombination'),
      );
      await assert.rejects(
        client.send(new DescribeSnapshotsCommand({ MaxResults: 5, SnapshotIds: [a] })),
        ec2Code('InvalidParameterCombination'),
      );
      await assert.rejects(
        client.send(new DescribeSnapshotsCommand({ NextToken: 'garbage' })),
        ec2Code('InvalidNextToken'),
      );

      await assert.rejects(
        client.send(new DescribeSnapshotsCommand({ SnapshotIds: ['snap-123'] })),
        ec2Code('InvalidSnapshotID.Malformed'),
      );
      await assert.rejects(
        client.send(new DescribeSnapshotsCommand({ SnapshotIds: ['snap-0123456789abcdef0'] })),
        ec2Code('InvalidSnapshot.NotFound'),
      );
      await assert.rejects(
        client.send(new DescribeSnapshotsCommand({ Filters: [{ Name: 'colour', Values: ['x'] }] })),
        ec2Code('InvalidParameterValue'),
      );
      await assert.rejects(
        client.send(new DescribeSnapshotsCommand({ OwnerIds: ['nobody'] })),
        ec2Code('InvalidUserID.Malformed'),
      );
    });
  });

  it('keeps accounts and regions apart', async () => {
    await withCloud(
      async ({ url }) => {
        const mine = await makeSnapshot(url);
        const west = await makeSnapshot(url, { region: 'us-west-2' });
        const theirs = await makeSnapshot(url, { credentials: OTHER_KEY });
        const east = await ec2(url).send(new DescribeSnapshotsCommand({}));
        assert.deepEqual(
          east.Snapshots?.map((s) => s.SnapshotId),
          [mine],
        );
        const inWest = await ec2(url, undefined, 'us-west-2').send(
          new DescribeSnapshotsCommand({}),
        );
        assert.deepEqual(
          inWest.Snapshots?.map((s) => s.SnapshotId),
          [west],
        );
        await assert.rejects(
          ec2(url).send(new DescribeSnapshotsCommand({ SnapshotIds: [theirs] })),
          ec2Code('InvalidSnapshot.NotFound'),
        );
        await assert.rejects(
          ec2(url).send(new DeleteSnapshotCommand({ SnapshotId: theirs })),
          ec2Code('InvalidSnapshot.NotFound'),
        );
        await assert.rejects(
          ec2(url).send(
            new ModifySnapshotAttributeCommand({
              SnapshotId: theirs,
              Attribute: 'createVolumePermission',
              CreateVolumePermission: { Add: [{ UserId: OWNER }] },
            }),
          ),
          ec2Code('InvalidSnapshot.NotFound'),
        );
      },
      { config: EC2_CONFIG },
    );
  });

  it('DeleteSnapshot removes a snapshot; malformed and unknown ids are refused', async () => {
    await withCloud(async ({ url }) => {
      const id = await makeSnapshot(url);
      const client = ec2(url);
      await client.send(new DeleteSnapshotCommand({ SnapshotId: id }));
      await assert.rejects(
        client.send(new DescribeSnapshotsCommand({ SnapshotIds: [id] })),
        ec2Code('InvalidSnapshot.NotFound'),
      );
      await assert.rejects(
        client.send(new DeleteSnapshotCommand({ SnapshotId: id })),
        ec2Code('InvalidSnapshot.NotFound'),
      );
      await assert.rejects(
        client.send(new DeleteSnapshotCommand({ SnapshotId: 'vol-1' })),
        ec2Code('InvalidSnapshotID.Malformed'),
      );
      await assert.rejects(
        client.send(new DeleteSnapshotCommand({ SnapshotId: id, DryRun: true })),
        ec2Code('DryRunOperation', 412),
      );
    });
  });

  it('shares a snapshot with another account, which sees it and copies it; reset takes it back', async () => {
    await withCloud(
      async ({ url }) => {
        const id = await makeSnapshot(url, { size: 3 });
        const owner = ec2(url);
        const other = ec2(url, OTHER_KEY);
        await assert.rejects(
          other.send(new DescribeSnapshotsCommand({ SnapshotIds: [id] })),
          ec2Code('InvalidSnapshot.NotFound'),
        );
        await owner.send(
          new ModifySnapshotAttributeCommand({
            SnapshotId: id,
            Attribute: 'createVolumePermission',
            CreateVolumePermission: { Add: [{ UserId: OTHER }] },
          }),
        );
        const attr = await owner.send(
          new DescribeSnapshotAttributeCommand({
            SnapshotId: id,
            Attribute: 'createVolumePermission',
          }),
        );
        assert.deepEqual(attr.CreateVolumePermissions, [{ UserId: OTHER }]);
        assert.equal(attr.SnapshotId, id);
        // The other account sees it by default, by RestorableBy self, and by owner id.
        const seen = await other.send(new DescribeSnapshotsCommand({}));
        assert.deepEqual(
          seen.Snapshots?.map((s) => s.SnapshotId),
          [id],
        );
        assert.equal(seen.Snapshots?.[0]?.OwnerId, OWNER);
        const restorable = await other.send(
          new DescribeSnapshotsCommand({ RestorableByUserIds: ['self'] }),
        );
        assert.deepEqual(
          restorable.Snapshots?.map((s) => s.SnapshotId),
          [id],
        );
        const byOwner = await other.send(new DescribeSnapshotsCommand({ OwnerIds: [OWNER] }));
        assert.deepEqual(
          byOwner.Snapshots?.map((s) => s.SnapshotId),
          [id],
        );
        assert.deepEqual(
          (await other.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }))).Snapshots,
          [],
        );
        // A third account still does not.
        await assert.rejects(
          ec2(url, THIRD_KEY).send(new DescribeSnapshotsCommand({ SnapshotIds: [id] })),
          ec2Code('InvalidSnapshot.NotFound'),
        );
        // Only the owner reads and changes the attribute.
        await assert.rejects(
          other.send(
            new DescribeSnapshotAttributeCommand({
              SnapshotId: id,
              Attribute: 'createVolumePermission',
            }),
          ),
          ec2Code('InvalidSnapshot.NotFound'),
        );
        // The other account copies it into its own account, in another region too.
        const copy = await other.send(
          new CopySnapshotCommand({
            SourceRegion: 'us-east-1',
            SourceSnapshotId: id,
            Description: 'mine now',
          }),
        );
        const westCopy = await ec2(url, OTHER_KEY, 'eu-west-1').send(
          new CopySnapshotCommand({
            SourceRegion: 'us-east-1',
            SourceSnapshotId: id,
            TagSpecifications: [
              { ResourceType: 'snapshot', Tags: [{ Key: 'copied', Value: 'yes' }] },
            ],
          }),
        );
        assert.deepEqual(westCopy.Tags, [{ Key: 'copied', Value: 'yes' }]);
        const theirs = await other.send(
          new DescribeSnapshotsCommand({ SnapshotIds: [copy.SnapshotId!] }),
        );
        assert.equal(theirs.Snapshots?.[0]?.OwnerId, OTHER);
        assert.equal(theirs.Snapshots?.[0]?.VolumeSize, 3);
        assert.equal(theirs.Snapshots?.[0]?.Description, 'mine now');
        const west = await ec2(url, OTHER_KEY, 'eu-west-1').send(
          new DescribeSnapshotsCommand({ OwnerIds: ['self'] }),
        );
        assert.equal(west.Snapshots?.[0]?.Description, `[Copied ${id} from us-east-1]`);
        assert.deepEqual(west.Snapshots?.[0]?.Tags, [{ Key: 'copied', Value: 'yes' }]);

        // Removing the user, then the public group and reset.
        await owner.send(
          new ModifySnapshotAttributeCommand({
            SnapshotId: id,
            OperationType: 'remove',
            UserIds: [OTHER],
          }),
        );
        await assert.rejects(
          other.send(new DescribeSnapshotsCommand({ SnapshotIds: [id] })),
          ec2Code('InvalidSnapshot.NotFound'),
        );
        await owner.send(
          new ModifySnapshotAttributeCommand({
            SnapshotId: id,
            CreateVolumePermission: { Add: [{ Group: 'all' }] },
          }),
        );
        const pub = await ec2(url, THIRD_KEY).send(
          new DescribeSnapshotsCommand({ RestorableByUserIds: ['all'] }),
        );
        assert.deepEqual(
          pub.Snapshots?.map((s) => s.SnapshotId),
          [id],
        );
        assert.deepEqual(
          (
            await owner.send(
              new DescribeSnapshotAttributeCommand({
                SnapshotId: id,
                Attribute: 'createVolumePermission',
              }),
            )
          ).CreateVolumePermissions,
          [{ Group: 'all' }],
        );
        await owner.send(
          new ResetSnapshotAttributeCommand({
            SnapshotId: id,
            Attribute: 'createVolumePermission',
          }),
        );
        assert.deepEqual(
          (
            await owner.send(
              new DescribeSnapshotAttributeCommand({
                SnapshotId: id,
                Attribute: 'createVolumePermission',
              }),
            )
          ).CreateVolumePermissions,
          [],
        );
        await assert.rejects(
          ec2(url, THIRD_KEY).send(new DescribeSnapshotsCommand({ SnapshotIds: [id] })),
          ec2Code('InvalidSnapshot.NotFound'),
        );
        // Bad values.
        await assert.rejects(
          owner.send(
            new ModifySnapshotAttributeCommand({
              SnapshotId: id,
              CreateVolumePermission: { Add: [{ UserId: '12' }] },
            }),
          ),
          ec2Code('InvalidUserID.Malformed'),
        );
        await assert.rejects(
          owner.send(new ModifySnapshotAttributeCommand({ SnapshotId: id })),
          ec2Code('MissingParameter'),
        );
        await assert.rejects(
          owner.send(
            new DescribeSnapshotAttributeCommand({
              SnapshotId: id,
              Attribute: 'colour' as 'productCodes',
            }),
          ),
          ec2Code('InvalidParameterValue'),
        );
      },
      { config: EC2_CONFIG },
    );
  });

  it("follows AWS's encryption rules for sharing and copying", async () => {
    await withCloud(
      async ({ url }) => {
        const owner = ec2(url);
        const other = ec2(url, OTHER_KEY);
        // Encrypted with the AWS managed default key: cannot be shared, nor made public.
        const managed = await makeSnapshot(url, { encrypted: true });
        await assert.rejects(
          owner.send(
            new ModifySnapshotAttributeCommand({
              SnapshotId: managed,
              CreateVolumePermission: { Add: [{ UserId: OTHER }] },
            }),
          ),
          ec2Code('OperationNotPermitted'),
        );
        // A customer key whose policy allows the other account: shareable, but never public.
        const keys = kms(url);
        const key = await keys.send(new CreateKeyCommand({}));
        const arn = key.KeyMetadata!.Arn!;
        const cmk = await makeSnapshot(url, { encrypted: true, kmsKeyArn: arn });
        await assert.rejects(
          owner.send(
            new ModifySnapshotAttributeCommand({
              SnapshotId: cmk,
              CreateVolumePermission: { Add: [{ Group: 'all' }] },
            }),
          ),
          ec2Code('OperationNotPermitted'),
        );
        await owner.send(
          new ModifySnapshotAttributeCommand({
            SnapshotId: cmk,
            CreateVolumePermission: { Add: [{ UserId: OTHER }] },
          }),
        );
        // Shared, but the key's policy does not yet let the other account use it: the copy is refused.
        await assert.rejects(
          other.send(new CopySnapshotCommand({ SourceRegion: 'us-east-1', SourceSnapshotId: cmk })),
          ec2Code('InvalidParameterValue'),
        );
        await keys.send(
          new PutKeyPolicyCommand({
            KeyId: arn,
            PolicyName: 'default',
            Policy: JSON.stringify({
              Version: '2012-10-17',
              Statement: [
                {
                  Effect: 'Allow',
                  Principal: { AWS: `arn:aws:iam::${OWNER}:root` },
                  Action: 'kms:*',
                  Resource: '*',
                },
                {
                  Effect: 'Allow',
                  Principal: { AWS: `arn:aws:iam::${OTHER}:root` },
                  Action: 'kms:*',
                  Resource: '*',
                },
              ],
            }),
          }),
        );
        const copied = await other.send(
          new CopySnapshotCommand({ SourceRegion: 'us-east-1', SourceSnapshotId: cmk }),
        );
        const copy = (
          await other.send(new DescribeSnapshotsCommand({ SnapshotIds: [copied.SnapshotId!] }))
        ).Snapshots![0]!;
        // An encrypted source gives an encrypted copy, under the copier's own default key.
        assert.equal(copy.Encrypted, true);
        const otherDefault = await kms(url, OTHER_KEY).send(
          new DescribeKeyCommand({ KeyId: 'alias/aws/ebs' }),
        );
        assert.equal(copy.KmsKeyId, otherDefault.KeyMetadata!.Arn);
        // Encrypted=false does not decrypt.
        const still = await owner.send(
          new CopySnapshotCommand({
            SourceRegion: 'us-east-1',
            SourceSnapshotId: cmk,
            Encrypted: false,
          }),
        );
        const stillInfo = (
          await owner.send(new DescribeSnapshotsCommand({ SnapshotIds: [still.SnapshotId!] }))
        ).Snapshots![0]!;
        assert.equal(stillInfo.Encrypted, true);
        assert.equal(
          stillInfo.KmsKeyId,
          arn,
          'a copy in the same account and region keeps its key',
        );

        // Encrypted=true encrypts an unencrypted source, with a named key of the destination region.
        const plain = await makeSnapshot(url);
        const westKey = await kms(url, undefined, 'us-west-2').send(new CreateKeyCommand({}));
        const west = ec2(url, undefined, 'us-west-2');
        const enc = await west.send(
          new CopySnapshotCommand({
            SourceRegion: 'us-east-1',
            SourceSnapshotId: plain,
            Encrypted: true,
            KmsKeyId: westKey.KeyMetadata!.KeyId!,
          }),
        );
        const encInfo = (
          await west.send(new DescribeSnapshotsCommand({ SnapshotIds: [enc.SnapshotId!] }))
        ).Snapshots![0]!;
        assert.equal(encInfo.Encrypted, true);
        assert.equal(encInfo.KmsKeyId, westKey.KeyMetadata!.Arn);
        // The key must exist in the destination region, and KmsKeyId needs Encrypted.
        await assert.rejects(
          west.send(
            new CopySnapshotCommand({
              SourceRegion: 'us-east-1',
              SourceSnapshotId: plain,
              Encrypted: true,
              KmsKeyId: arn,
            }),
          ),
          ec2Code('InvalidParameterValue'),
        );
        await assert.rejects(
          west.send(
            new CopySnapshotCommand({
              SourceRegion: 'us-east-1',
              SourceSnapshotId: plain,
              KmsKeyId: westKey.KeyMetadata!.KeyId!,
            }),
          ),
          ec2Code('InvalidParameterDependency'),
        );
        await assert.rejects(
          west.send(
            new CopySnapshotCommand({
              SourceRegion: 'us-east-1',
              SourceSnapshotId: plain,
              Encrypted: true,
              KmsKeyId: 'alias/none',
            }),
          ),
          ec2Code('InvalidParameterValue'),
        );
        // Another account's key that does not allow the caller.
        const foreign = await kms(url, THIRD_KEY, 'us-west-2').send(new CreateKeyCommand({}));
        await assert.rejects(
          west.send(
            new CopySnapshotCommand({
              SourceRegion: 'us-east-1',
              SourceSnapshotId: plain,
              Encrypted: true,
              KmsKeyId: foreign.KeyMetadata!.Arn!,
            }),
          ),
          ec2Code('InvalidParameterValue'),
        );
        // Pending snapshots and unknown regions cannot be copied.
        const pending = await makeSnapshot(url, { complete: false });
        await assert.rejects(
          owner.send(
            new CopySnapshotCommand({ SourceRegion: 'us-east-1', SourceSnapshotId: pending }),
          ),
          ec2Code('IncorrectState'),
        );
        await assert.rejects(
          owner.send(new CopySnapshotCommand({ SourceRegion: 'mars-1', SourceSnapshotId: plain })),
          ec2Code('InvalidParameterValue'),
        );
        await assert.rejects(
          owner.send(
            new CopySnapshotCommand({
              SourceRegion: 'us-east-1',
              SourceSnapshotId: 'snap-0000000000000000a',
            }),
          ),
          ec2Code('InvalidSnapshot.NotFound'),
        );
      },
      { config: EC2_CONFIG },
    );
  });
});
