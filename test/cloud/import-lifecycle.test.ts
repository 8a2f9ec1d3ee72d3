import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CancelImportTaskCommand, ImportImageCommand } from '@aws-sdk/client-ec2';
import { withCloud } from '../helpers/cloud.js';
import { CTX } from '../helpers/ebs.js';
import { haveDiskTools, makeDebianDisk } from '../helpers/import-disks.js';
import { withTempDir } from '../helpers/qemu.js';
import { doubles, ec2Client, gate, waitImage } from '../helpers/vm-import.js';

const container = { Format: 'RAW', UserBucket: { S3Bucket: 'imports', S3Key: 'debian.raw' } };

describe('VM Import: cancel, restart, boot, describe', {
  skip: haveDiskTools ? false : 'mke2fs or sfdisk missing',
}, () => {
  it('cancels a task while it converts and removes its partial snapshot', async () => {
    await withTempDir(async (dir) => {
      const raw = await makeDebianDisk(dir);
      const g = gate('snapshot-started');
      const d = doubles({ checkpoint: g.checkpoint });
      d.objects.set('imports/debian.raw', raw);
      await withCloud(
        async ({ url, endpoint }) => {
          const ec2 = ec2Client(url);
          const { ImportTaskId: id } = await ec2.send(
            new ImportImageCommand({ DiskContainers: [container] }),
          );
          await g.reached;
          const record = (await endpoint.vmImport!.tasks(CTX, 'image'))[0]!;
          assert.equal(record.step, 'converting');
          const partial = record.snapshotId!;
          assert.equal((await endpoint.ebs.getSnapshot(CTX, partial))?.status, 'pending');
          const r = await ec2.send(
            new CancelImportTaskCommand({ ImportTaskId: id, CancelReason: 'wrong disk' }),
          );
          assert.deepEqual([r.ImportTaskId, r.PreviousState, r.State], [id, 'active', 'deleting']);
          const { task } = await waitImage(ec2, id!);
          assert.equal(task.Status, 'deleted');
          assert.equal(task.StatusMessage, 'wrong disk');
          assert.equal(await endpoint.ebs.getSnapshot(CTX, partial), undefined);
          assert.equal(d.registered.length, 0);
          // A finished task cannot be cancelled again.
          await assert.rejects(ec2.send(new CancelImportTaskCommand({ ImportTaskId: id })), {
            name: 'IncorrectState',
          });
          await assert.rejects(
            ec2.send(new CancelImportTaskCommand({ ImportTaskId: 'import-ami-00000000000000000' })),
            { name: 'InvalidConversionTaskId' },
          );
        },
        { extra: { vmImport: d.deps } },
      );
    });
  });

  for (const point of ['snapshot-started', 'preparing ami'] as const) {
    it(`resumes a task the endpoint stopped at ${point} when it opens again`, async () => {
      await withTempDir(async (dir) => {
        const raw = await makeDebianDisk(dir);
        const data = join(dir, 'cloud');
        await mkdir(data);
        const g = gate(point);
        const first = doubles({ checkpoint: g.checkpoint });
        first.objects.set('imports/debian.raw', raw);
        let id = '';
        let before = '';
        await withCloud(
          async ({ url, endpoint }) => {
            const ec2 = ec2Client(url);
            id = (await ec2.send(new ImportImageCommand({ DiskContainers: [container] })))
              .ImportTaskId!;
            await g.reached;
            before = (await endpoint.vmImport!.tasks(CTX, 'image'))[0]!.snapshotId!;
            // close() stops the held task without failing it.
          },
          { dir: data, extra: { vmImport: first.deps } },
        );
        const second = doubles();
        second.objects.set('imports/debian.raw', raw);
        await withCloud(
          async ({ url, endpoint }) => {
            const ec2 = ec2Client(url);
            const { task } = await waitImage(ec2, id);
            assert.equal(task.Status, 'completed', task.StatusMessage);
            const record = (await endpoint.vmImport!.tasks(CTX, 'image'))[0]!;
            assert.ok(
              record.timeline.some((e) => e.note === 'resumed after a restart of the endpoint'),
            );
            const count = (m: string) =>
              record.timeline.filter((e) => e.message === m && e.note === undefined).length;
            if (point === 'snapshot-started') {
              // The half-written snapshot is dropped and the disk converted again.
              assert.equal(count('converting'), 2);
              assert.notEqual(record.snapshotId, before);
              assert.equal(await endpoint.ebs.getSnapshot(CTX, before), undefined);
            } else {
              // The completed snapshot is kept; only registration runs again.
              assert.equal(count('converting'), 1);
              assert.equal(count('preparing ami'), 2);
              assert.equal(record.snapshotId, before);
            }
            assert.equal(second.registered.length, 1);
            assert.equal(second.registered[0]!.input.snapshotId, record.snapshotId);
          },
          { dir: data, extra: { vmImport: second.deps } },
        );
        assert.equal(first.registered.length, 0);
      });
    });
  }
});
