import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import {
  CopyImageCommand,
  CreateTagsCommand,
  DescribeImagesCommand,
  DescribeSnapshotAttributeCommand,
  ModifySnapshotAttributeCommand,
  RegisterImageCommand,
} from '@aws-sdk/client-ec2';
import { CLI } from '../helpers/cli.js';
import { withCloud } from '../helpers/cloud.js';
import { ec2, makeSnapshot, OTHER } from '../helpers/ec2.js';
import { withTempDir } from '../helpers/qemu.js';

function serve(dir: string): Promise<{ child: ChildProcess; endpoint: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [CLI, 'cloud', 'serve', '--data', dir, '--listen', '127.0.0.1:0', '--output', 'json'],
      {
        stdio: ['ignore', 'pipe', 'ignore'],
      },
    );
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0)
        resolve({
          child,
          endpoint: (JSON.parse(out.slice(0, nl)) as { endpoint: string }).endpoint,
        });
    });
    child.on('exit', (code) => reject(new Error(`ferry cloud serve exited with ${code}`)));
  });
}

describe('cloud: EC2 state and kill -9', () => {
  it('every acknowledged image, share, tag and copy is there after the server is killed', async () => {
    await withTempDir(async (dir) => {
      await withCloud(async () => {}, {
        dir,
        config: {
          accounts: [{ id: OTHER, accessKeyId: 'AKIAOTHERCRASH01', secretAccessKey: 's' }],
        },
      });
      const { child, endpoint } = await serve(dir);
      const images: string[] = [];
      const snaps: string[] = [];
      let copy = '';
      try {
        const client = ec2(endpoint);
        for (let i = 0; i < 3; i++) snaps.push(await makeSnapshot(endpoint, { seed: i }));
        // Several writers of one document at once: each acknowledged change must be kept.
        const made = await Promise.all(
          snaps.map((s, i) =>
            client.send(
              new RegisterImageCommand({
                Name: `crash-${i}`,
                RootDeviceName: '/dev/xvda',
                BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: s } }],
              }),
            ),
          ),
        );
        images.push(...made.map((m) => m.ImageId!));
        await Promise.all([
          client.send(
            new CreateTagsCommand({ Resources: images, Tags: [{ Key: 'k', Value: 'v' }] }),
          ),
          client.send(
            new ModifySnapshotAttributeCommand({
              SnapshotId: snaps[0]!,
              CreateVolumePermission: { Add: [{ UserId: OTHER }] },
            }),
          ),
        ]);
        copy = (
          await ec2(endpoint, undefined, 'eu-west-1').send(
            new CopyImageCommand({
              SourceRegion: 'us-east-1',
              SourceImageId: images[0]!,
              Name: 'crash-copy',
            }),
          )
        ).ImageId!;
      } finally {
        await new Promise<void>((resolve) => {
          child.removeAllListeners('exit');
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        });
      }
      await withCloud(
        async ({ url }) => {
          const client = ec2(url);
          const found = await client.send(new DescribeImagesCommand({ ImageIds: images }));
          assert.deepEqual(found.Images?.map((i) => i.ImageId).sort(), [...images].sort());
          for (const i of found.Images ?? []) assert.deepEqual(i.Tags, [{ Key: 'k', Value: 'v' }]);
          const attr = await client.send(
            new DescribeSnapshotAttributeCommand({
              SnapshotId: snaps[0]!,
              Attribute: 'createVolumePermission',
            }),
          );
          assert.deepEqual(attr.CreateVolumePermissions, [{ UserId: OTHER }]);
          const west = await ec2(url, undefined, 'eu-west-1').send(
            new DescribeImagesCommand({ ImageIds: [copy] }),
          );
          assert.equal(west.Images?.[0]?.Name, 'crash-copy');
        },
        {
          dir,
          config: {
            accounts: [{ id: OTHER, accessKeyId: 'AKIAOTHERCRASH01', secretAccessKey: 's' }],
          },
        },
      );
    });
  });
});
