import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CopyImageCommand,
  CreateTagsCommand,
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImageAttributeCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  type EC2Client,
  ModifyImageAttributeCommand,
  ModifySnapshotAttributeCommand,
  RegisterImageCommand,
  type RegisterImageCommandInput,
  ResetImageAttributeCommand,
} from '@aws-sdk/client-ec2';
import { CreateKeyCommand } from '@aws-sdk/client-kms';
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
import { withTempDir } from '../helpers/qemu.js';

function hvm(
  name: string,
  snapshotId: string,
  extra: Partial<RegisterImageCommandInput> = {},
): RegisterImageCommandInput {
  return {
    Name: name,
    Architecture: 'x86_64',
    VirtualizationType: 'hvm',
    RootDeviceName: '/dev/xvda',
    BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: snapshotId } }],
    ...extra,
  };
}

async function image(client: EC2Client, id: string) {
  const r = await client.send(new DescribeImagesCommand({ ImageIds: [id] }));
  assert.equal(r.Images?.length, 1);
  return r.Images![0]!;
}

describe('cloud: EC2 images', () => {
  it('RegisterImage makes an EBS image from a snapshot; DescribeImages shows what was asked', async () => {
    await withCloud(async ({ url }) => {
      const client = ec2(url);
      const snap = await makeSnapshot(url, { size: 2 });
      const r = await client.send(
        new RegisterImageCommand(
          hvm('debian-12 (amd64) [2026.12]', snap, {
            Description: 'Debian 12',
            BootMode: 'uefi-preferred',
            EnaSupport: true,
            SriovNetSupport: 'simple',
            ImdsSupport: 'v2.0',
            BlockDeviceMappings: [
              {
                DeviceName: '/dev/xvda',
                Ebs: {
                  SnapshotId: snap,
                  VolumeSize: 8,
                  VolumeType: 'gp3',
                  DeleteOnTermination: false,
                },
              },
              { DeviceName: '/dev/sdb', VirtualName: 'ephemeral0' },
            ],
            TagSpecifications: [{ ResourceType: 'image', Tags: [{ Key: 'os', Value: 'debian' }] }],
          }),
        ),
      );
      assert.match(r.ImageId!, /^ami-[0-9a-f]{17}$/);
      const img = await image(client, r.ImageId!);
      assert.equal(img.Name, 'debian-12 (amd64) [2026.12]');
      assert.equal(img.Description, 'Debian 12');
      assert.equal(img.State, 'available');
      assert.equal(img.OwnerId, OWNER);
      assert.equal(img.Architecture, 'x86_64');
      assert.equal(img.VirtualizationType, 'hvm');
      assert.equal(img.BootMode, 'uefi-preferred');
      assert.equal(img.EnaSupport, true);
      assert.equal(img.SriovNetSupport, 'simple');
      assert.equal(img.ImdsSupport, 'v2.0');
      assert.equal(img.RootDeviceType, 'ebs');
      assert.equal(img.RootDeviceName, '/dev/xvda');
      assert.equal(img.Public, false);
      assert.equal(img.ImageType, 'machine');
      assert.deepEqual(img.Tags, [{ Key: 'os', Value: 'debian' }]);
      const root = img.BlockDeviceMappings?.find((m) => m.DeviceName === '/dev/xvda');
      assert.deepEqual(
        {
          id: root?.Ebs?.SnapshotId,
          size: root?.Ebs?.VolumeSize,
          type: root?.Ebs?.VolumeType,
          del: root?.Ebs?.DeleteOnTermination,
          enc: root?.Ebs?.Encrypted,
        },
        { id: snap, size: 8, type: 'gp3', del: false, enc: false },
      );
      assert.equal(
        img.BlockDeviceMappings?.find((m) => m.DeviceName === '/dev/sdb')?.VirtualName,
        'ephemeral0',
      );
      assert.ok(!Number.isNaN(Date.parse(img.CreationDate ?? '')));
      const boot = await client.send(
        new DescribeImageAttributeCommand({ ImageId: r.ImageId!, Attribute: 'bootMode' }),
      );
      assert.equal(boot.BootMode?.Value, 'uefi-preferred');
      const bdm = await client.send(
        new DescribeImageAttributeCommand({ ImageId: r.ImageId!, Attribute: 'blockDeviceMapping' }),
      );
      assert.equal(bdm.BlockDeviceMappings?.length, 2);

      // AWS's defaults when Architecture and VirtualizationType are left out: i386, paravirtual.
      const snap2 = await makeSnapshot(url);
      const d = await client.send(
        new RegisterImageCommand({
          Name: 'defaults',
          RootDeviceName: '/dev/sda1',
          BlockDeviceMappings: [{ DeviceName: '/dev/sda1', Ebs: { SnapshotId: snap2 } }],
        }),
      );
      const def = await image(client, d.ImageId!);
      assert.equal(def.Architecture, 'i386');
      assert.equal(def.VirtualizationType, 'paravirtual');
      assert.equal(def.BlockDeviceMappings?.[0]?.Ebs?.VolumeSize, 1);

      // An encrypted snapshot gives an encrypted image; TPM needs uefi.
      const enc = await makeSnapshot(url, { encrypted: true });
      const e = await client.send(
        new RegisterImageCommand(hvm('encrypted', enc, { BootMode: 'uefi', TpmSupport: 'v2.0' })),
      );
      const encImg = await image(client, e.ImageId!);
      assert.equal(encImg.BlockDeviceMappings?.[0]?.Ebs?.Encrypted, true);
      assert.match(encImg.BlockDeviceMappings?.[0]?.Ebs?.KmsKeyId ?? '', /^arn:aws:kms:/);
      assert.equal(encImg.TpmSupport, 'v2.0');
    });
  });

  it('RegisterImage refuses bad names, duplicates, bad mappings and unusable snapshots', async () => {
    await withCloud(
      async ({ url }) => {
        const client = ec2(url);
        const snap = await makeSnapshot(url, { size: 4 });
        await client.send(new RegisterImageCommand(hvm('taken', snap)));
        const cases: Array<[RegisterImageCommandInput, string]> = [
          [hvm('ab', snap), 'InvalidAMIName.Malformed'],
          [hvm('x'.repeat(129), snap), 'InvalidAMIName.Malformed'],
          [hvm('bad*name', snap), 'InvalidAMIName.Malformed'],
          [hvm('taken', snap), 'InvalidAMIName.Duplicate'],
          [{ ...hvm('no-root', snap), RootDeviceName: undefined }, 'MissingParameter'],
          [
            hvm('root-mismatch', snap, { RootDeviceName: '/dev/sda1' }),
            'InvalidBlockDeviceMapping',
          ],
          [
            hvm('too-small', snap, {
              BlockDeviceMappings: [
                { DeviceName: '/dev/xvda', Ebs: { SnapshotId: snap, VolumeSize: 2 } },
              ],
            }),
            'InvalidBlockDeviceMapping',
          ],
          [
            hvm('bad-device', snap, {
              RootDeviceName: '/etc/passwd',
              BlockDeviceMappings: [{ DeviceName: '/etc/passwd', Ebs: { SnapshotId: snap } }],
            }),
            'InvalidBlockDeviceMapping',
          ],
          [hvm('malformed-snap', 'snap-1'), 'InvalidSnapshotID.Malformed'],
          [hvm('unknown-snap', 'snap-0123456789abcdef0'), 'InvalidSnapshot.NotFound'],
          [
            hvm('tpm-bios', snap, { BootMode: 'legacy-bios', TpmSupport: 'v2.0' }),
            'InvalidParameterCombination',
          ],
          [
            hvm('arm-bios', snap, { Architecture: 'arm64', BootMode: 'legacy-bios' }),
            'InvalidParameterCombination',
          ],
          [
            hvm('encrypt-plain', snap, {
              BlockDeviceMappings: [
                { DeviceName: '/dev/xvda', Ebs: { SnapshotId: snap, Encrypted: true } },
              ],
            }),
            'InvalidParameterCombination',
          ],
          [hvm('sriov', snap, { SriovNetSupport: 'fancy' }), 'InvalidParameterValue'],
          [
            hvm('tags', snap, {
              TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'a', Value: 'b' }] }],
            }),
            'InvalidParameterValue',
          ],
          [
            hvm('aws-tag', snap, {
              TagSpecifications: [{ ResourceType: 'image', Tags: [{ Key: 'aws:x', Value: 'b' }] }],
            }),
            'InvalidParameterValue',
          ],
          [{ Name: 'nothing-at-all' }, 'MissingParameter'],
          [{ Name: 'bundle', ImageLocation: 'bucket/image.manifest.xml' }, 'InvalidManifest'],
          [{ Name: 'bundle-path', ImageLocation: 'bucket/../x.manifest.xml' }, 'InvalidManifest'],
        ];
        for (const [input, code] of cases) {
          await assert.rejects(
            client.send(new RegisterImageCommand(input)),
            ec2Code(code),
            input.Name,
          );
        }
        const pending = await makeSnapshot(url, { complete: false });
        await assert.rejects(
          client.send(new RegisterImageCommand(hvm('pending', pending))),
          ec2Code('IncorrectState'),
        );
        // Another account's snapshot, until it is shared.
        const theirs = await makeSnapshot(url, { credentials: OTHER_KEY });
        await assert.rejects(
          client.send(new RegisterImageCommand(hvm('theirs', theirs))),
          ec2Code('InvalidSnapshot.NotFound'),
        );
        await ec2(url, OTHER_KEY).send(
          new ModifySnapshotAttributeCommand({
            SnapshotId: theirs,
            CreateVolumePermission: { Add: [{ UserId: OWNER }] },
          }),
        );
        const ok = await client.send(new RegisterImageCommand(hvm('theirs', theirs)));
        assert.equal(
          (await image(client, ok.ImageId!)).BlockDeviceMappings?.[0]?.Ebs?.SnapshotId,
          theirs,
        );
        // Now in use by this account's image, the owner cannot delete it.
        await assert.rejects(
          ec2(url, OTHER_KEY).send(new DeleteSnapshotCommand({ SnapshotId: theirs })),
          ec2Code('InvalidSnapshot.InUse'),
        );
      },
      { config: EC2_CONFIG },
    );
  });

  it('a snapshot in use cannot be deleted: deregister first (or delete the snapshots with the image)', async () => {
    await withCloud(async ({ url }) => {
      const client = ec2(url);
      const snap = await makeSnapshot(url);
      const { ImageId } = await client.send(new RegisterImageCommand(hvm('in-use', snap)));
      await assert.rejects(
        client.send(new DeleteSnapshotCommand({ SnapshotId: snap })),
        (e: Error) => {
          ec2Code('InvalidSnapshot.InUse')(e);
          assert.equal(e.message, `The snapshot ${snap} is currently in use by ${ImageId}`);
          return true;
        },
      );
      await client.send(new DeregisterImageCommand({ ImageId: ImageId! }));
      await assert.rejects(
        client.send(new DescribeImagesCommand({ ImageIds: [ImageId!] })),
        ec2Code('InvalidAMIID.NotFound'),
      );
      await assert.rejects(
        client.send(new DeregisterImageCommand({ ImageId: ImageId! })),
        ec2Code('InvalidAMIID.NotFound'),
      );
      await client.send(new DeleteSnapshotCommand({ SnapshotId: snap }));

      // DeleteAssociatedSnapshots: a snapshot another image still uses is skipped.
      const a = await makeSnapshot(url, { seed: 1 });
      const b = await makeSnapshot(url, { seed: 2 });
      const two = await client.send(
        new RegisterImageCommand(
          hvm('two-disks', a, {
            BlockDeviceMappings: [
              { DeviceName: '/dev/xvda', Ebs: { SnapshotId: a } },
              { DeviceName: '/dev/xvdb', Ebs: { SnapshotId: b } },
            ],
          }),
        ),
      );
      await client.send(new RegisterImageCommand(hvm('shares-b', b)));
      const out = await client.send(
        new DeregisterImageCommand({ ImageId: two.ImageId!, DeleteAssociatedSnapshots: true }),
      );
      assert.deepEqual(
        out.DeleteSnapshotResults?.map((r) => [r.SnapshotId, r.ReturnCode]),
        [
          [a, 'success'],
          [b, 'skipped'],
        ],
      );
      const left = await client.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }));
      assert.deepEqual(
        left.Snapshots?.map((s) => s.SnapshotId),
        [b],
      );
      await assert.rejects(
        client.send(new DeregisterImageCommand({ ImageId: 'ami-12' })),
        ec2Code('InvalidAMIID.Malformed'),
      );
    });
  });

  it('DescribeImages filters with wildcards, by owner and executable users, in pages', async () => {
    await withCloud(
      async ({ url }) => {
        const client = ec2(url);
        const snap = await makeSnapshot(url);
        const ids: string[] = [];
        for (const name of [
          'web-2026-01',
          'web-2026-02',
          'db-2026-01',
          'web-x',
          'arm-build',
          'extra-1',
          'extra-2',
        ]) {
          const arch = name.startsWith('arm') ? 'arm64' : 'x86_64';
          const r = await client.send(
            new RegisterImageCommand(
              hvm(name, snap, {
                Architecture: arch,
                ...(arch === 'arm64' ? { BootMode: 'uefi' } : {}),
              }),
            ),
          );
          ids.push(r.ImageId!);
        }
        const names = async (filters: Array<{ Name: string; Values: string[] }>, extra = {}) =>
          (
            (await client.send(new DescribeImagesCommand({ Filters: filters, ...extra }))).Images ??
            []
          )
            .map((i) => i.Name)
            .sort();
        assert.deepEqual(await names([{ Name: 'name', Values: ['web-2026-*'] }]), [
          'web-2026-01',
          'web-2026-02',
        ]);
        assert.deepEqual(await names([{ Name: 'name', Values: ['web-202?-0?', 'db-*'] }]), [
          'db-2026-01',
          'web-2026-01',
          'web-2026-02',
        ]);
        assert.deepEqual(
          await names([
            { Name: 'name', Values: ['*-01'] },
            { Name: 'architecture', Values: ['x86_64'] },
          ]),
          ['db-2026-01', 'web-2026-01'],
        );
        assert.deepEqual(await names([{ Name: 'architecture', Values: ['arm64'] }]), ['arm-build']);
        assert.deepEqual(await names([{ Name: 'is-public', Values: ['true'] }]), []);
        assert.equal(
          (
            await names([
              { Name: 'state', Values: ['available'] },
              { Name: 'root-device-type', Values: ['ebs'] },
            ])
          ).length,
          7,
        );
        assert.equal(
          (await names([{ Name: 'block-device-mapping.snapshot-id', Values: [snap] }])).length,
          7,
        );
        assert.deepEqual(await names([{ Name: 'image-id', Values: [ids[3]!] }]), ['web-x']);
        await client.send(
          new CreateTagsCommand({
            Resources: [ids[0]!, ids[2]!],
            Tags: [{ Key: 'team', Value: 'blue' }],
          }),
        );
        await client.send(
          new CreateTagsCommand({ Resources: [ids[1]!], Tags: [{ Key: 'team', Value: 'green' }] }),
        );
        assert.deepEqual(await names([{ Name: 'tag:team', Values: ['bl*'] }]), [
          'db-2026-01',
          'web-2026-01',
        ]);
        assert.deepEqual(await names([{ Name: 'tag-key', Values: ['team'] }]), [
          'db-2026-01',
          'web-2026-01',
          'web-2026-02',
        ]);
        assert.deepEqual(await names([], { Owners: ['amazon'] }), []);
        assert.equal((await names([], { Owners: ['self'] })).length, 7);
        assert.equal((await names([], { Owners: [OWNER] })).length, 7);
        await assert.rejects(
          names([{ Name: 'colour', Values: ['red'] }]),
          ec2Code('InvalidParameterValue'),
        );
        await assert.rejects(
          client.send(new DescribeImagesCommand({ ImageIds: ['ami-zz'] })),
          ec2Code('InvalidAMIID.Malformed'),
        );
        await assert.rejects(
          client.send(new DescribeImagesCommand({ ImageIds: ['ami-0123456789abcdef0'] })),
          ec2Code('InvalidAMIID.NotFound'),
        );
        await assert.rejects(
          client.send(new DescribeImagesCommand({ Owners: ['me'] })),
          ec2Code('InvalidUserID.Malformed'),
        );

        // Pages of 3 over 7 images, in id order, each once.
        const seen: string[] = [];
        let token: string | undefined;
        let pages = 0;
        do {
          const page = await client.send(
            new DescribeImagesCommand({
              Owners: ['self'],
              MaxResults: 3,
              ...(token ? { NextToken: token } : {}),
            }),
          );
          seen.push(...(page.Images ?? []).map((i) => i.ImageId!));
          token = page.NextToken;
          pages++;
        } while (token !== undefined);
        assert.equal(pages, 3);
        assert.deepEqual(seen, [...ids].sort());
        // A token belongs to its own query.
        const first = await client.send(
          new DescribeImagesCommand({ Owners: ['self'], MaxResults: 3 }),
        );
        await assert.rejects(
          client.send(
            new DescribeImagesCommand({
              Owners: [OWNER],
              MaxResults: 3,
              NextToken: first.NextToken!,
            }),
          ),
          ec2Code('InvalidNextToken'),
        );

        // Other accounts see nothing until shared.
        const other = ec2(url, OTHER_KEY);
        assert.deepEqual((await other.send(new DescribeImagesCommand({}))).Images, []);
        await client.send(
          new ModifyImageAttributeCommand({
            ImageId: ids[0]!,
            LaunchPermission: { Add: [{ UserId: OTHER }] },
          }),
        );
        await client.send(
          new ModifyImageAttributeCommand({
            ImageId: ids[1]!,
            LaunchPermission: { Add: [{ Group: 'all' }] },
          }),
        );
        const mine = await other.send(new DescribeImagesCommand({ ExecutableUsers: ['self'] }));
        assert.deepEqual(
          mine.Images?.map((i) => i.ImageId),
          [ids[0]],
        );
        assert.equal(mine.Images?.[0]?.Tags, undefined, 'tags stay with the owner');
        const pub = await ec2(url, THIRD_KEY).send(
          new DescribeImagesCommand({ ExecutableUsers: ['all'] }),
        );
        assert.deepEqual(
          pub.Images?.map((i) => i.ImageId),
          [ids[1]],
        );
        assert.equal(pub.Images?.[0]?.Public, true);
        const everything = await other.send(new DescribeImagesCommand({ Owners: [OWNER] }));
        assert.deepEqual(everything.Images?.map((i) => i.ImageId).sort(), [ids[0], ids[1]].sort());
        // Another region has none of them.
        assert.deepEqual(
          (await ec2(url, undefined, 'eu-west-1').send(new DescribeImagesCommand({}))).Images,
          [],
        );
      },
      { config: EC2_CONFIG },
    );
  });

  it('launch permissions: add, describe, remove, reset; only the owner changes them; AWS sharing rules', async () => {
    await withCloud(
      async ({ url }) => {
        const client = ec2(url);
        const snap = await makeSnapshot(url);
        const { ImageId } = await client.send(new RegisterImageCommand(hvm('shared', snap)));
        const id = ImageId!;
        await client.send(
          new ModifyImageAttributeCommand({
            ImageId: id,
            Attribute: 'launchPermission',
            OperationType: 'add',
            UserIds: [OTHER],
          }),
        );
        const lp = await client.send(
          new DescribeImageAttributeCommand({ ImageId: id, Attribute: 'launchPermission' }),
        );
        assert.deepEqual(lp.LaunchPermissions, [{ UserId: OTHER }]);
        const other = ec2(url, OTHER_KEY);
        assert.equal((await image(other, id)).OwnerId, OWNER);
        await assert.rejects(
          other.send(
            new ModifyImageAttributeCommand({
              ImageId: id,
              LaunchPermission: { Add: [{ Group: 'all' }] },
            }),
          ),
          ec2Code('AuthFailure'),
        );
        await assert.rejects(
          other.send(
            new DescribeImageAttributeCommand({ ImageId: id, Attribute: 'launchPermission' }),
          ),
          ec2Code('AuthFailure'),
        );
        await client.send(
          new ModifyImageAttributeCommand({
            ImageId: id,
            LaunchPermission: { Remove: [{ UserId: OTHER }] },
          }),
        );
        await assert.rejects(
          other.send(new DescribeImagesCommand({ ImageIds: [id] })),
          ec2Code('InvalidAMIID.NotFound'),
        );
        await client.send(
          new ModifyImageAttributeCommand({
            ImageId: id,
            LaunchPermission: { Add: [{ Group: 'all' }, { UserId: OTHER }] },
          }),
        );
        assert.deepEqual(
          (
            await client.send(
              new DescribeImageAttributeCommand({ ImageId: id, Attribute: 'launchPermission' }),
            )
          ).LaunchPermissions,
          [{ Group: 'all' }, { UserId: OTHER }],
        );
        await client.send(
          new ResetImageAttributeCommand({ ImageId: id, Attribute: 'launchPermission' }),
        );
        assert.deepEqual(
          (
            await client.send(
              new DescribeImageAttributeCommand({ ImageId: id, Attribute: 'launchPermission' }),
            )
          ).LaunchPermissions,
          [],
        );
        await assert.rejects(
          client.send(
            new ModifyImageAttributeCommand({
              ImageId: id,
              LaunchPermission: { Add: [{ UserId: 'someone' }] },
            }),
          ),
          ec2Code('InvalidAMIAttributeItemValue'),
        );
        await assert.rejects(
          client.send(
            new ModifyImageAttributeCommand({
              ImageId: id,
              Attribute: 'kernel',
              Value: 'aki-12345678',
            }),
          ),
          ec2Code('InvalidParameterValue'),
        );
        await assert.rejects(
          client.send(new ModifyImageAttributeCommand({ ImageId: id })),
          ec2Code('MissingParameter'),
        );
        // Description and imdsSupport.
        await client.send(
          new ModifyImageAttributeCommand({ ImageId: id, Description: { Value: 'new words' } }),
        );
        assert.equal(
          (
            await client.send(
              new DescribeImageAttributeCommand({ ImageId: id, Attribute: 'description' }),
            )
          ).Description?.Value,
          'new words',
        );
        await client.send(
          new ModifyImageAttributeCommand({ ImageId: id, ImdsSupport: { Value: 'v2.0' } }),
        );
        assert.equal((await image(client, id)).ImdsSupport, 'v2.0');
        await assert.rejects(
          client.send(
            new ModifyImageAttributeCommand({
              ImageId: id,
              Description: { Value: 'x'.repeat(256) },
            }),
          ),
          ec2Code('InvalidParameterValue'),
        );
        // Encrypted with the AWS managed key: not shareable; a customer key: shareable, never public.
        const enc = await makeSnapshot(url, { encrypted: true });
        const e = await client.send(new RegisterImageCommand(hvm('enc-default', enc)));
        await assert.rejects(
          client.send(
            new ModifyImageAttributeCommand({
              ImageId: e.ImageId!,
              LaunchPermission: { Add: [{ UserId: OTHER }] },
            }),
          ),
          ec2Code('InvalidParameter'),
        );
        const key = await kms(url).send(new CreateKeyCommand({}));
        const cmkSnap = await makeSnapshot(url, {
          encrypted: true,
          kmsKeyArn: key.KeyMetadata!.Arn!,
        });
        const c = await client.send(new RegisterImageCommand(hvm('enc-cmk', cmkSnap)));
        await client.send(
          new ModifyImageAttributeCommand({
            ImageId: c.ImageId!,
            LaunchPermission: { Add: [{ UserId: OTHER }] },
          }),
        );
        await assert.rejects(
          client.send(
            new ModifyImageAttributeCommand({
              ImageId: c.ImageId!,
              LaunchPermission: { Add: [{ Group: 'all' }] },
            }),
          ),
          ec2Code('InvalidParameter'),
        );
      },
      { config: EC2_CONFIG },
    );
  });

  it('CopyImage copies an image and its snapshots to another region: pending, then available; idempotent by ClientToken', async () => {
    await withCloud(
      async ({ url, clock }) => {
        const east = ec2(url);
        const west = ec2(url, undefined, 'us-west-2');
        const snap = await makeSnapshot(url, { size: 2 });
        const src = await east.send(
          new RegisterImageCommand(
            hvm('source', snap, {
              BootMode: 'uefi',
              EnaSupport: true,
              Description: 'src',
              TagSpecifications: [{ ResourceType: 'image', Tags: [{ Key: 'k', Value: 'v' }] }],
            }),
          ),
        );
        const copy = await west.send(
          new CopyImageCommand({
            SourceRegion: 'us-east-1',
            SourceImageId: src.ImageId!,
            Name: 'copy',
            ClientToken: 'token-1',
            CopyImageTags: true,
            TagSpecifications: [
              { ResourceType: 'image', Tags: [{ Key: 'copy', Value: 'yes' }] },
              { ResourceType: 'snapshot', Tags: [{ Key: 'from', Value: src.ImageId! }] },
            ],
          }),
        );
        const pending = await image(west, copy.ImageId!);
        assert.equal(pending.State, 'pending');
        assert.equal(pending.Name, 'copy');
        assert.equal(pending.Description, 'src');
        assert.equal(pending.BootMode, 'uefi');
        assert.equal(pending.SourceImageId, src.ImageId);
        assert.deepEqual(
          pending.Tags?.sort((a, b) => a.Key!.localeCompare(b.Key!)),
          [
            { Key: 'copy', Value: 'yes' },
            { Key: 'k', Value: 'v' },
          ],
        );
        clock.offset += 10_000;
        assert.equal((await image(west, copy.ImageId!)).State, 'available');
        const copiedSnap = pending.BlockDeviceMappings?.[0]?.Ebs?.SnapshotId;
        assert.notEqual(copiedSnap, snap);
        const snaps = await west.send(new DescribeSnapshotsCommand({ SnapshotIds: [copiedSnap!] }));
        assert.equal(snaps.Snapshots?.[0]?.VolumeSize, 2);
        assert.deepEqual(snaps.Snapshots?.[0]?.Tags, [{ Key: 'from', Value: src.ImageId! }]);
        // The copy's snapshot is in use by the copy.
        await assert.rejects(
          west.send(new DeleteSnapshotCommand({ SnapshotId: copiedSnap! })),
          ec2Code('InvalidSnapshot.InUse'),
        );
        // Same token, same request: the same image. Same token, other request: refused.
        const again = await west.send(
          new CopyImageCommand({
            SourceRegion: 'us-east-1',
            SourceImageId: src.ImageId!,
            Name: 'copy',
            ClientToken: 'token-1',
          }),
        );
        assert.equal(again.ImageId, copy.ImageId);
        await assert.rejects(
          west.send(
            new CopyImageCommand({
              SourceRegion: 'us-east-1',
              SourceImageId: src.ImageId!,
              Name: 'copy-2',
              ClientToken: 'token-1',
            }),
          ),
          ec2Code('IdempotentParameterMismatch'),
        );
        // Two retries racing each other make one image, and leave no stray snapshot.
        const before = (await west.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] })))
          .Snapshots!.length;
        const racing = await Promise.all(
          [1, 2, 3].map(() =>
            west.send(
              new CopyImageCommand({
                SourceRegion: 'us-east-1',
                SourceImageId: src.ImageId!,
                Name: 'raced',
                ClientToken: 'token-race',
              }),
            ),
          ),
        );
        assert.equal(new Set(racing.map((r) => r.ImageId)).size, 1);
        const after = (await west.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] })))
          .Snapshots!.length;
        assert.equal(after, before + 1);
        // A token that is also an object key of JavaScript is just a token.
        const proto = {
          SourceRegion: 'us-east-1',
          SourceImageId: src.ImageId!,
          Name: 'proto',
          ClientToken: '__proto__',
        };
        const p1 = await west.send(new CopyImageCommand(proto));
        const p2 = await west.send(new CopyImageCommand(proto));
        assert.equal(p1.ImageId, p2.ImageId);
        await assert.rejects(
          west.send(
            new CopyImageCommand({
              SourceRegion: 'us-east-1',
              SourceImageId: src.ImageId!,
              Name: 'copy',
            }),
          ),
          ec2Code('InvalidAMIName.Duplicate'),
        );
        // Encrypted=true with a key of the destination region encrypts the copy.
        const westKey = await kms(url, undefined, 'us-west-2').send(new CreateKeyCommand({}));
        const enc = await west.send(
          new CopyImageCommand({
            SourceRegion: 'us-east-1',
            SourceImageId: src.ImageId!,
            Name: 'encrypted-copy',
            Encrypted: true,
            KmsKeyId: westKey.KeyMetadata!.Arn!,
          }),
        );
        const encImg = await image(west, enc.ImageId!);
        assert.equal(encImg.BlockDeviceMappings?.[0]?.Ebs?.Encrypted, true);
        assert.equal(encImg.BlockDeviceMappings?.[0]?.Ebs?.KmsKeyId, westKey.KeyMetadata!.Arn);
        // An encrypted source never becomes an unencrypted copy.
        clock.offset += 10_000;
        const back = await east.send(
          new CopyImageCommand({
            SourceRegion: 'us-west-2',
            SourceImageId: enc.ImageId!,
            Name: 'back',
            Encrypted: false,
          }),
        );
        assert.equal(
          (await image(east, back.ImageId!)).BlockDeviceMappings?.[0]?.Ebs?.Encrypted,
          true,
        );
        // Errors.
        await assert.rejects(
          west.send(
            new CopyImageCommand({
              SourceRegion: 'us-east-1',
              SourceImageId: src.ImageId!,
              Name: 'k',
              KmsKeyId: westKey.KeyMetadata!.Arn!,
            }),
          ),
          ec2Code('InvalidAMIName.Malformed'),
        );
        await assert.rejects(
          west.send(
            new CopyImageCommand({
              SourceRegion: 'us-east-1',
              SourceImageId: src.ImageId!,
              Name: 'kms-no-enc',
              KmsKeyId: westKey.KeyMetadata!.Arn!,
            }),
          ),
          ec2Code('InvalidParameterDependency'),
        );
        await assert.rejects(
          west.send(
            new CopyImageCommand({
              SourceRegion: 'us-east-1',
              SourceImageId: 'ami-0123456789abcdef0',
              Name: 'nothing',
            }),
          ),
          ec2Code('InvalidAMIID.NotFound'),
        );
        await assert.rejects(
          west.send(
            new CopyImageCommand({
              SourceRegion: 'us-west-2',
              SourceImageId: src.ImageId!,
              Name: 'wrong-region',
            }),
          ),
          ec2Code('InvalidAMIID.NotFound'),
        );
        // A pending copy cannot be copied again.
        const fresh = await east.send(
          new CopyImageCommand({
            SourceRegion: 'us-east-1',
            SourceImageId: src.ImageId!,
            Name: 'fresh',
          }),
        );
        await assert.rejects(
          east.send(
            new CopyImageCommand({
              SourceRegion: 'us-east-1',
              SourceImageId: fresh.ImageId!,
              Name: 'fresh-2',
            }),
          ),
          ec2Code('InvalidAMIID.Unavailable'),
        );
      },
      { config: EC2_CONFIG },
    );
  });

  it('CopyImage from another account needs launch permission and the snapshots shared', async () => {
    await withCloud(
      async ({ url, clock }) => {
        const owner = ec2(url);
        const other = ec2(url, OTHER_KEY);
        const snap = await makeSnapshot(url);
        const { ImageId } = await owner.send(new RegisterImageCommand(hvm('to-share', snap)));
        const input = { SourceRegion: 'us-east-1', SourceImageId: ImageId!, Name: 'their-copy' };
        await assert.rejects(
          other.send(new CopyImageCommand(input)),
          ec2Code('InvalidAMIID.NotFound'),
        );
        await owner.send(
          new ModifyImageAttributeCommand({
            ImageId: ImageId!,
            LaunchPermission: { Add: [{ UserId: OTHER }] },
          }),
        );
        await assert.rejects(other.send(new CopyImageCommand(input)), ec2Code('InvalidRequest'));
        await owner.send(
          new ModifySnapshotAttributeCommand({
            SnapshotId: snap,
            CreateVolumePermission: { Add: [{ UserId: OTHER }] },
          }),
        );
        const copy = await other.send(new CopyImageCommand(input));
        clock.offset += 10_000;
        const img = await image(other, copy.ImageId!);
        assert.equal(img.OwnerId, OTHER);
        assert.equal(img.State, 'available');
        const theirSnap = img.BlockDeviceMappings?.[0]?.Ebs?.SnapshotId ?? '';
        const s = await other.send(new DescribeSnapshotsCommand({ SnapshotIds: [theirSnap] }));
        assert.equal(s.Snapshots?.[0]?.OwnerId, OTHER);
        // The owner can now deregister and delete its own, the copy is unaffected.
        await owner.send(
          new DeregisterImageCommand({ ImageId: ImageId!, DeleteAssociatedSnapshots: true }),
        );
        await assert.rejects(
          owner.send(new DescribeSnapshotsCommand({ SnapshotIds: [snap] })),
          ec2Code('InvalidSnapshot.NotFound'),
        );
        assert.equal((await image(other, copy.ImageId!)).State, 'available');
      },
      { config: EC2_CONFIG },
    );
  });

  it('images, shares and tags survive an endpoint restart', async () => {
    await withTempDir(async (dir) => {
      const ids: { image?: string; snap?: string } = {};
      await withCloud(
        async ({ url }) => {
          const client = ec2(url);
          ids.snap = await makeSnapshot(url);
          const r = await client.send(
            new RegisterImageCommand(
              hvm('persistent', ids.snap, {
                TagSpecifications: [{ ResourceType: 'image', Tags: [{ Key: 'a', Value: '1' }] }],
              }),
            ),
          );
          ids.image = r.ImageId!;
          await client.send(
            new ModifyImageAttributeCommand({
              ImageId: ids.image,
              LaunchPermission: { Add: [{ UserId: OTHER }] },
            }),
          );
          await client.send(
            new ModifySnapshotAttributeCommand({
              SnapshotId: ids.snap,
              CreateVolumePermission: { Add: [{ UserId: OTHER }] },
            }),
          );
          await client.send(
            new CreateTagsCommand({ Resources: [ids.snap], Tags: [{ Key: 'b', Value: '2' }] }),
          );
        },
        { dir, config: EC2_CONFIG },
      );
      await withCloud(
        async ({ url }) => {
          const client = ec2(url);
          const img = await image(client, ids.image!);
          assert.equal(img.Name, 'persistent');
          assert.deepEqual(img.Tags, [{ Key: 'a', Value: '1' }]);
          assert.equal((await image(ec2(url, OTHER_KEY), ids.image!)).ImageId, ids.image);
          const snaps = await ec2(url, OTHER_KEY).send(
            new DescribeSnapshotsCommand({ SnapshotIds: [ids.snap!] }),
          );
          assert.equal(snaps.Snapshots?.length, 1);
          const own = await client.send(new DescribeSnapshotsCommand({ SnapshotIds: [ids.snap!] }));
          assert.deepEqual(own.Snapshots?.[0]?.Tags, [{ Key: 'b', Value: '2' }]);
          await assert.rejects(
            client.send(new DeleteSnapshotCommand({ SnapshotId: ids.snap! })),
            ec2Code('InvalidSnapshot.InUse'),
          );
          await assert.rejects(
            client.send(new RegisterImageCommand(hvm('persistent', ids.snap!))),
            ec2Code('InvalidAMIName.Duplicate'),
          );
        },
        { dir, config: EC2_CONFIG },
      );
    });
  });
});
