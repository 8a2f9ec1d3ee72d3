import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CopyImageCommand,
  DescribeImagesCommand,
  ModifyImageAttributeCommand,
} from '@aws-sdk/client-ec2';
import { CreateKeyCommand, PutKeyPolicyCommand } from '@aws-sdk/client-kms';
import type { RegisterImage } from '../../src/cloud/import/index.js';
import { importRegistrar, isAwsError } from '../../src/cloud/index.js';
import { withCloud } from '../helpers/cloud.js';
import { EC2_CONFIG, ec2, kms, makeSnapshot, OTHER, OWNER } from '../helpers/ec2.js';

const code = (c: string) => (e: unknown) => isAwsError(e) && e.code === c;

describe('cloud: the images API other components call', () => {
  it('registerImage makes an AMI for import tasks; imageForLaunch says who may launch it', async () => {
    await withCloud(
      async ({ url, endpoint, clock }) => {
        const snap = await makeSnapshot(url, { size: 4 });
        const ctx = { account: OWNER, region: 'us-east-1' };
        const image = await endpoint.images.registerImage(ctx, {
          name: 'import-ami-0123456789abcdef0',
          architecture: 'x86_64',
          virtualizationType: 'hvm',
          bootMode: 'uefi',
          rootDeviceName: '/dev/sda1',
          blockDeviceMappings: [{ deviceName: '/dev/sda1', ebs: { snapshotId: snap } }],
          tags: [{ key: 'import', value: 'yes' }],
        });
        assert.match(image.imageId, /^ami-[0-9a-f]{17}$/);
        assert.equal(image.state, 'available');
        assert.deepEqual(
          image.blockDeviceMappings.map((m) => [m.deviceName, m.snapshotId, m.volumeSize]),
          [['/dev/sda1', snap, 4]],
        );
        assert.equal(image.encrypted, false);
        // The SDK sees it as any other image.
        const seen = await ec2(url).send(new DescribeImagesCommand({ ImageIds: [image.imageId] }));
        assert.equal(seen.Images?.[0]?.BootMode, 'uefi');
        // With a client token (an import task registering again after a restart): the same image.
        const once = {
          name: 'import-ami-0123456789abcdef1',
          architecture: 'x86_64' as const,
          rootDeviceName: '/dev/sda1',
          blockDeviceMappings: [
            { deviceName: '/dev/sda1', ebs: { snapshotId: snap, volumeSize: 4 } },
          ],
          clientToken: 'import-ami-0123456789abcdef1',
        };
        const first = await endpoint.images.registerImage(ctx, once);
        const second = await endpoint.images.registerImage(ctx, once);
        assert.equal(second.imageId, first.imageId);
        await assert.rejects(
          endpoint.images.registerImage(ctx, { ...once, name: 'something-else' }),
          code('IdempotentParameterMismatch'),
        );
        // The registrar VM Import takes: an hvm image of the snapshot, idempotent by task id.
        const register: RegisterImage = importRegistrar(endpoint.images);
        const task = {
          name: 'import-ami-0123456789abcdef2',
          architecture: 'x86_64',
          bootMode: 'uefi' as const,
          rootDeviceName: '/dev/sda1' as const,
          snapshotId: snap,
          volumeSize: 4,
          clientToken: 'import-ami-0123456789abcdef2',
        };
        const made = await register(ctx, task);
        assert.equal((await register(ctx, task)).imageId, made.imageId);
        const registered = await endpoint.images.imageForLaunch(ctx, made.imageId);
        assert.equal(registered.virtualizationType, 'hvm');
        assert.equal(registered.bootMode, 'uefi');
        await assert.rejects(
          register(ctx, { ...task, architecture: 'sparc', clientToken: 'other' }),
          code('InvalidParameterValue'),
        );
        // The same rules as RegisterImage.
        await assert.rejects(
          endpoint.images.registerImage(ctx, { name: 'x' }),
          code('InvalidAMIName.Malformed'),
        );

        const launched = await endpoint.images.imageForLaunch(ctx, image.imageId);
        assert.equal(launched.rootDeviceName, '/dev/sda1');
        const other = { account: OTHER, region: 'us-east-1' };
        await assert.rejects(
          endpoint.images.imageForLaunch(other, image.imageId),
          code('InvalidAMIID.NotFound'),
        );
        await assert.rejects(
          endpoint.images.imageForLaunch({ account: OWNER, region: 'us-west-2' }, image.imageId),
          code('InvalidAMIID.NotFound'),
        );
        await assert.rejects(
          endpoint.images.imageForLaunch(ctx, 'ami-xyz'),
          code('InvalidAMIID.Malformed'),
        );
        await ec2(url).send(
          new ModifyImageAttributeCommand({
            ImageId: image.imageId,
            LaunchPermission: { Add: [{ UserId: OTHER }] },
          }),
        );
        assert.equal((await endpoint.images.imageForLaunch(other, image.imageId)).ownerId, OWNER);
        // A copy is not launchable until it is available.
        const copy = await ec2(url).send(
          new CopyImageCommand({
            SourceRegion: 'us-east-1',
            SourceImageId: image.imageId,
            Name: 'copy',
          }),
        );
        await assert.rejects(
          endpoint.images.imageForLaunch(ctx, copy.ImageId!),
          code('InvalidAMIID.Unavailable'),
        );
        clock.offset += 10_000;
        assert.equal((await endpoint.images.imageForLaunch(ctx, copy.ImageId!)).state, 'available');

        // A shared image encrypted with a customer key: launchable once the key's policy allows it.
        const keys = kms(url);
        const key = await keys.send(new CreateKeyCommand({}));
        const arn = key.KeyMetadata!.Arn!;
        const encSnap = await makeSnapshot(url, { encrypted: true, kmsKeyArn: arn });
        const enc = await endpoint.images.registerImage(ctx, {
          name: 'encrypted',
          rootDeviceName: '/dev/xvda',
          blockDeviceMappings: [{ deviceName: '/dev/xvda', ebs: { snapshotId: encSnap } }],
        });
        assert.equal(enc.encrypted, true);
        await ec2(url).send(
          new ModifyImageAttributeCommand({
            ImageId: enc.imageId,
            LaunchPermission: { Add: [{ UserId: OTHER }] },
          }),
        );
        await assert.rejects(
          endpoint.images.imageForLaunch(other, enc.imageId),
          code('InvalidKMSKey.InvalidState'),
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
                  Principal: { AWS: [`arn:aws:iam::${OWNER}:root`, `arn:aws:iam::${OTHER}:root`] },
                  Action: 'kms:*',
                  Resource: '*',
                },
              ],
            }),
          }),
        );
        assert.equal(
          (await endpoint.images.imageForLaunch(other, enc.imageId)).imageId,
          enc.imageId,
        );
      },
      { config: EC2_CONFIG },
    );
  });
});
