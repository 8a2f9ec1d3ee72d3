import assert from 'node:assert/strict';
import { mkdir, open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  CreateTagsCommand,
  DeleteTagsCommand,
  DescribeImportImageTasksCommand,
  DescribeTagsCommand,
  ImportImageCommand,
  type ImportImageCommandInput,
  ImportSnapshotCommand,
} from '@aws-sdk/client-ec2';
import { IMAGE_STEPS } from '../../src/cloud/import/index.js';
import type { CloudEndpoint } from '../../src/cloud/index.js';
import { convertImage } from '../../src/disk/index.js';
import { withCloud } from '../helpers/cloud.js';
import { CTX } from '../helpers/ebs.js';
import {
  breakFillerGrain,
  haveDiskTools,
  makeDebianDisk,
  makeEmptyDisk,
} from '../helpers/import-disks.js';
import { withTempDir } from '../helpers/qemu.js';
import { doubles, ec2Client, type Seen, waitImage, waitSnapshot } from '../helpers/vm-import.js';

const BLOCK = 512 * 1024;

/** Every 512 KiB block of the snapshot equals the raw disk's (zeros where it has none). */
async function assertSnapshotIs(endpoint: CloudEndpoint, snapshotId: string, raw: string) {
  const disk = await readFile(raw);
  const map = await endpoint.ebs.snapshotBlocks(CTX, snapshotId);
  const have = new Set(map.map(([i]) => i));
  for (let i = 0; i * BLOCK < disk.length; i++) {
    const want = Buffer.alloc(BLOCK);
    disk.copy(want, 0, i * BLOCK, Math.min(disk.length, (i + 1) * BLOCK));
    if (want.every((b) => b === 0)) {
      assert.ok(!have.has(i), `block ${i} is zero in the disk but stored`);
      continue;
    }
    assert.ok(have.has(i), `block ${i} holds data but is missing`);
    assert.ok(
      (await endpoint.ebs.readBlock(CTX, snapshotId, i)).equals(want),
      `block ${i} differs`,
    );
  }
  assert.ok(map.length > 0);
}

/** The states seen through Describe come in the walk's order, Progress never going back. */
function assertWalk(seen: readonly Seen[], order: readonly string[]) {
  let at = -1;
  let progress = 0;
  for (const s of seen) {
    if (s.status === 'completed') continue;
    assert.equal(s.status, 'active', JSON.stringify(s));
    // A skipped boot says so: "booting (skipped: …)".
    const m = s.message ?? '';
    const i = order.findIndex((o) => m === o || m.startsWith(`${o} (`));
    assert.ok(i >= at, `${s.message} came after ${order[at]}`);
    at = i;
    assert.ok((s.progress ?? 0) >= progress, `progress fell to ${s.progress}`);
    progress = s.progress ?? 0;
  }
}

describe('VM Import: ImportImage and ImportSnapshot', {
  skip: haveDiskTools ? false : 'mke2fs or sfdisk missing',
}, () => {
  it('imports a Debian disk from VMDK, raw, OVA, VHD and VHDX, walking every state into an AMI', async () => {
    await withTempDir(async (dir) => {
      const raw = await makeDebianDisk(dir);
      const vmdk = join(dir, 'disk.vmdk');
      await convertImage(raw, vmdk, { to: 'vmdk' });
      const d = doubles();
      d.objects.set('imports/debian.vmdk', vmdk);
      d.objects.set('imports/debian.raw', raw);
      for (const to of ['ova', 'vhd', 'vhdx'] as const) {
        const path = join(dir, `disk.${to}`);
        await convertImage(raw, path, { to });
        d.objects.set(`imports/debian.${to}`, path);
      }
      await withCloud(
        async ({ url, endpoint }) => {
          const ec2 = ec2Client(url);
          for (const [container, format] of [
            { Format: 'vmdk', UserBucket: { S3Bucket: 'imports', S3Key: 'debian.vmdk' } },
            { Format: 'RAW', Url: 's3://imports/debian.raw' },
            { Format: 'OVA', Url: 's3://imports/debian.ova' },
            { Format: 'VHD', Url: 's3://imports/debian.vhd' },
            // No Format: the bytes say which.
            { Url: 's3://imports/debian.vhdx' },
          ].map((c) => [c, (c.Format ?? 'vhdx').toUpperCase()] as const)) {
            const started = await ec2.send(
              new ImportImageCommand({
                Description: 'debian 12',
                DiskContainers: [container],
                TagSpecifications: [
                  { ResourceType: 'import-image-task', Tags: [{ Key: 'team', Value: 'ferry' }] },
                ],
              }),
            );
            assert.match(started.ImportTaskId ?? '', /^import-ami-[0-9a-f]{17}$/);
            assert.equal(started.Status, 'active');
            assert.equal(started.StatusMessage, 'pending');
            assert.equal(started.Progress, '2');
            assert.deepEqual(started.Tags, [{ Key: 'team', Value: 'ferry' }]);
            const { task, seen } = await waitImage(ec2, started.ImportTaskId!);
            assert.equal(task.Status, 'completed', task.StatusMessage);
            assertWalk(seen, IMAGE_STEPS);
            assert.match(task.ImageId ?? '', /^ami-/);
            assert.equal(task.Architecture, 'x86_64');
            assert.equal(task.Platform, 'Linux');
            assert.equal(task.BootMode, 'legacy-bios');
            const detail = task.SnapshotDetails?.[0];
            assert.equal(detail?.Status, 'completed');
            assert.equal(detail?.Format, format);
            assert.equal(detail?.DeviceName, '/dev/sda1');
            assert.ok((detail?.DiskImageSize ?? 0) > 0);
            await assertSnapshotIs(endpoint, detail!.SnapshotId!, raw);
            // The AMI went through the registry interface with the snapshot as its root.
            const reg = d.registered.at(-1)!;
            assert.deepEqual(reg.input, {
              name: started.ImportTaskId,
              description: 'debian 12',
              architecture: 'x86_64',
              bootMode: 'legacy-bios',
              rootDeviceName: '/dev/sda1',
              snapshotId: detail!.SnapshotId,
              volumeSize: 1,
              clientToken: started.ImportTaskId,
            });
            // The stored timeline holds every state, in order, each with its time.
            const record = (await endpoint.vmImport!.tasks(CTX, 'image')).find(
              (t) => t.id === started.ImportTaskId,
            )!;
            assert.deepEqual(
              record.timeline.map((e) => e.message ?? e.status),
              [...IMAGE_STEPS, 'completed'],
            );
            assert.ok(record.timeline.every((e, i, a) => i === 0 || e.time >= a[i - 1]!.time));
            assert.match(
              record.timeline.find((e) => e.message === 'booting')?.note ?? '',
              /boot skipped: booting is turned off/,
            );
          }
          assert.equal(d.registered.length, 5);
        },
        { extra: { vmImport: d.deps } },
      );
    });
  });

  it('imports a snapshot (no OS check) with its states and blocks', async () => {
    await withTempDir(async (dir) => {
      const raw = await makeDebianDisk(dir, { osRelease: false });
      const d = doubles();
      d.objects.set('imports/data.img', raw);
      await withCloud(
        async ({ url, endpoint }) => {
          const ec2 = ec2Client(url);
          const started = await ec2.send(
            new ImportSnapshotCommand({
              Description: 'data disk',
              DiskContainer: {
                Format: 'RAW',
                UserBucket: { S3Bucket: 'imports', S3Key: 'data.img' },
              },
            }),
          );
          assert.match(started.ImportTaskId ?? '', /^import-snap-[0-9a-f]{17}$/);
          assert.equal(started.SnapshotTaskDetail?.Status, 'active');
          assert.equal(started.SnapshotTaskDetail?.StatusMessage, 'pending');
          const { task, seen } = await waitSnapshot(ec2, started.ImportTaskId!);
          assert.equal(task.Status, 'completed', task.StatusMessage);
          assertWalk(seen, ['pending', 'validating', 'validated', 'downloading/converting']);
          await assertSnapshotIs(endpoint, task.SnapshotId!, raw);
          assert.equal(d.registered.length, 0);
        },
        { extra: { vmImport: d.deps } },
      );
    });
  });

  it('fails bad images in validating with the words AWS uses', async () => {
    await withTempDir(async (dir) => {
      const good = await makeDebianDisk(dir);
      await mkdir(join(dir, 'no-os'));
      const noOs = await makeDebianDisk(join(dir, 'no-os'), { osRelease: false });
      await mkdir(join(dir, 'old-kernel'));
      // Debian 12 with Debian 9's kernel, which VM Import's table does not list.
      const oldKernel = await makeDebianDisk(join(dir, 'old-kernel'), { kernel: '4.9.0-19-amd64' });
      const empty = await makeEmptyDisk(join(dir, 'empty.img'));
      const vmdk = join(dir, 'good.vmdk');
      await convertImage(good, vmdk, { to: 'vmdk' });
      const corrupt = join(dir, 'corrupt.vmdk');
      const bytes = await readFile(vmdk);
      // Keep the magic, break the header: a grain size that is no power of two.
      bytes.writeBigUInt64LE(3n, 20);
      const fh = await open(corrupt, 'w');
      await fh.write(bytes);
      await fh.close();
      await mkdir(join(dir, 'filler'));
      const filled = await makeDebianDisk(join(dir, 'filler'), { filler: 2 * 1024 * 1024 });
      const grainy = join(dir, 'grain.vmdk');
      await convertImage(filled, grainy, { to: 'vmdk' });
      const grainBytes = await readFile(grainy);
      breakFillerGrain(grainBytes);
      await writeFile(grainy, grainBytes);
      const d = doubles();
      d.objects.set('bad/grain.vmdk', grainy);
      d.objects.set('bad/no-partitions.img', empty);
      d.objects.set('bad/no-os.img', noOs);
      d.objects.set('bad/old-kernel.img', oldKernel);
      d.objects.set('bad/raw-as-vmdk', good);
      d.objects.set('bad/corrupt.vmdk', corrupt);
      const cases: Array<[string, string, string]> = [
        ['no-partitions.img', 'RAW', 'ClientError: No valid partitions. Not a valid volume.'],
        ['no-os.img', 'RAW', 'ClientError: Unknown OS / Missing OS files.'],
        ['old-kernel.img', 'RAW', 'ClientError: Unsupported kernel version 4.9.0-19-amd64'],
        [
          'raw-as-vmdk',
          'VMDK',
          'ClientError: Disk validation failed [Unsupported VMDK File Format]',
        ],
        [
          'corrupt.vmdk',
          'VMDK',
          'ClientError: Disk validation failed [Unsupported VMDK File Format]',
        ],
        [
          'missing.img',
          'RAW',
          'ClientError: Disk validation failed [We do not have access to the given resource. Reason 403 Forbidden]',
        ],
      ];
      await withCloud(
        async ({ url, endpoint }) => {
          const ec2 = ec2Client(url);
          for (const [key, format, message] of cases) {
            const started = await ec2.send(
              new ImportImageCommand({
                DiskContainers: [{ Format: format, UserBucket: { S3Bucket: 'bad', S3Key: key } }],
              }),
            );
            const { task, seen } = await waitImage(ec2, started.ImportTaskId!);
            assert.equal(task.Status, 'deleted', key);
            assert.equal(task.StatusMessage, message, key);
            assert.ok(
              seen.every(
                (s) => s.status !== 'active' || ['pending', 'validating'].includes(s.message ?? ''),
              ),
              `${key} went past validating: ${JSON.stringify(seen)}`,
            );
            const record = (await endpoint.vmImport!.tasks(CTX, 'image')).find(
              (t) => t.id === started.ImportTaskId,
            )!;
            assert.deepEqual(
              record.timeline.map((e) => [e.status, e.message]),
              [
                ['active', 'pending'],
                ['active', 'validating'],
                ['deleting', message],
                ['deleted', message],
              ],
            );
            assert.equal(record.snapshotId, null);
          }
          // A grain validation never read breaks while converting: the half-written snapshot goes.
          const started = await ec2.send(
            new ImportImageCommand({
              DiskContainers: [
                { Format: 'VMDK', UserBucket: { S3Bucket: 'bad', S3Key: 'grain.vmdk' } },
              ],
            }),
          );
          const { task, seen } = await waitImage(ec2, started.ImportTaskId!);
          assert.equal(task.Status, 'deleted');
          assert.equal(task.StatusMessage, 'ClientError: Uncompressed data has invalid length');
          const record = (await endpoint.vmImport!.tasks(CTX, 'image')).find(
            (t) => t.id === started.ImportTaskId,
          )!;
          assert.ok(
            record.timeline.some((e) => e.message === 'converting'),
            JSON.stringify(seen),
          );
          // Nothing half-made is left in EBS.
          assert.deepEqual(await endpoint.ebs.listSnapshots(CTX), []);
        },
        { extra: { vmImport: d.deps } },
      );
    });
  });

  it('refuses bad requests with EC2 error codes', async () => {
    const d = doubles();
    await withCloud(
      async ({ url }) => {
        const ec2 = ec2Client(url);
        const refuse = async (input: ImportImageCommandInput, code: string) => {
          await assert.rejects(ec2.send(new ImportImageCommand(input)), (e: Error) => {
            assert.equal(e.name, code, e.message);
            return true;
          });
        };
        await refuse({}, 'MissingParameter');
        await refuse(
          { DiskContainers: [{ Format: 'qcow2', Url: 's3://bkt/k' }] },
          'InvalidParameterValue',
        );
        await refuse(
          { DiskContainers: [{ Url: 'https://example.invalid/k' }] },
          'InvalidParameter',
        );
        await refuse({ DiskContainers: [{ Url: 's3://UPPER/k' }] }, 'InvalidParameter');
        await refuse(
          { DiskContainers: [{ Url: 's3://bkt/k' }], BootMode: 'uefi-preferred' },
          'InvalidParameterValue',
        );
        await refuse(
          {
            DiskContainers: [{ Url: 's3://bkt/k' }],
            TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'a', Value: 'b' }] }],
          },
          'InvalidParameterValue',
        );
        await refuse(
          { DiskContainers: [{ Url: 's3://bkt/k' }, { Url: 's3://bkt/k2' }] },
          'InvalidParameterValue',
        );
        await assert.rejects(
          ec2.send(
            new ImportSnapshotCommand({ DiskContainer: { Format: 'OVA', Url: 's3://bkt/k' } }),
          ),
          { name: 'InvalidParameterValue' },
        );
        await assert.rejects(
          ec2.send(
            new DescribeImportImageTasksCommand({
              ImportTaskIds: ['import-ami-0123456789abcdef0'],
            }),
          ),
          { name: 'InvalidConversionTaskId' },
        );
        await assert.rejects(
          ec2.send(new DescribeImportImageTasksCommand({ ImportTaskIds: ['../../etc'] })),
          { name: 'InvalidConversionTaskId.Malformed' },
        );
        await assert.rejects(
          ec2.send(
            new DescribeImportImageTasksCommand({ Filters: [{ Name: 'bogus', Values: ['x'] }] }),
          ),
          { name: 'InvalidParameterValue' },
        );
      },
      { extra: { vmImport: d.deps } },
    );
  });
});

describe('VM Import: tags on import tasks', () => {
  it('CreateTags, DeleteTags and DescribeTags reach import-ami- and import-snap- tasks', async () => {
    await withTempDir(async (dir) => {
      const d = doubles();
      const blank = join(dir, 'blank.raw');
      await writeFile(blank, Buffer.alloc(4 * 1024 * 1024));
      d.objects.set('imports/blank.raw', blank);
      await withCloud(
        async ({ url }) => {
          const ec2 = ec2Client(url);
          // A blank disk: the task fails validation, and stays listed with its tags.
          const image = await ec2.send(
            new ImportImageCommand({
              DiskContainers: [
                { Format: 'raw', UserBucket: { S3Bucket: 'imports', S3Key: 'blank.raw' } },
              ],
              TagSpecifications: [
                { ResourceType: 'import-image-task', Tags: [{ Key: 'a', Value: '1' }] },
              ],
            }),
          );
          const snap = await ec2.send(
            new ImportSnapshotCommand({
              DiskContainer: {
                Format: 'raw',
                UserBucket: { S3Bucket: 'imports', S3Key: 'blank.raw' },
              },
            }),
          );
          const imageTask = image.ImportTaskId!;
          const snapTask = snap.ImportTaskId!;
          await ec2.send(
            new CreateTagsCommand({
              Resources: [imageTask, snapTask],
              Tags: [{ Key: 'b', Value: '2' }],
            }),
          );
          await ec2.send(new DeleteTagsCommand({ Resources: [imageTask], Tags: [{ Key: 'a' }] }));
          const described = await ec2.send(
            new DescribeImportImageTasksCommand({ ImportTaskIds: [imageTask] }),
          );
          assert.deepEqual(
            described.ImportImageTasks?.[0]?.Tags?.map((t) => [t.Key, t.Value]),
            [['b', '2']],
          );
          const tags = await ec2.send(new DescribeTagsCommand({}));
          assert.deepEqual(
            tags.Tags?.map((t) => [t.ResourceId, t.ResourceType, t.Key]).sort(),
            [
              [imageTask, 'import-image-task', 'b'],
              [snapTask, 'import-snapshot-task', 'b'],
            ].sort(),
          );
          await assert.rejects(
            ec2.send(
              new CreateTagsCommand({
                Resources: ['import-ami-0123456789abcdef0'],
                Tags: [{ Key: 'x', Value: 'y' }],
              }),
            ),
            (e: { name?: string }) => e.name === 'InvalidConversionTaskId',
          );
        },
        { extra: { vmImport: d.deps } },
      );
    });
  });
});
