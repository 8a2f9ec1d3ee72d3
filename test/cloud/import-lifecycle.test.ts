import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  CancelImportTaskCommand,
  DescribeImportImageTasksCommand,
  DescribeImportSnapshotTasksCommand,
  type DescribeImportSnapshotTasksCommandInput,
  EC2Client,
  ImportImageCommand,
  ImportSnapshotCommand,
} from '@aws-sdk/client-ec2';
import { withCloud } from '../helpers/cloud.js';
import { CTX } from '../helpers/ebs.js';
import {
  haveDiskTools,
  haveQemu,
  haveUefiTools,
  makeDebianDisk,
  makeUefiDisk,
} from '../helpers/import-disks.js';
import { withTempDir } from '../helpers/qemu.js';
import { doubles, ec2Client, gate, waitImage, waitUntil } from '../helpers/vm-import.js';

const CHILD = fileURLToPath(new URL('../helpers/import-crash-child.js', import.meta.url));

/** QEMU processes this test process started (the endpoint runs in it). */
function qemuChildren(): number {
  const r = spawnSync('ps', ['-o', 'comm=', '--ppid', String(process.pid)], { encoding: 'utf8' });
  return r.stdout.split('\n').filter((l) => l.startsWith('qemu-system')).length;
}

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

  it('boots the imported disk under QEMU: booted when the console shows userspace, FirstBootFailure on timeout', {
    skip: haveQemu ? false : 'qemu-system-x86_64 missing',
  }, async () => {
    await withTempDir(async (dir) => {
      await mkdir(join(dir, 'good'));
      await mkdir(join(dir, 'hangs'));
      const good = await makeDebianDisk(join(dir, 'good'));
      // Boot code that prints a line but never anything of userspace.
      const hangs = await makeDebianDisk(join(dir, 'hangs'), { bootLine: 'Loading Linux ...' });
      const d = doubles({ boot: { timeoutMs: 6000, memoryMiB: 128 } });
      d.objects.set('imports/good.raw', good);
      d.objects.set('imports/hangs.raw', hangs);
      await withCloud(
        async ({ url, endpoint }) => {
          const ec2 = ec2Client(url);
          const ok = await ec2.send(
            new ImportImageCommand({
              DiskContainers: [{ Format: 'RAW', Url: 's3://imports/good.raw' }],
            }),
          );
          const bad = await ec2.send(
            new ImportImageCommand({
              DiskContainers: [{ Format: 'RAW', Url: 's3://imports/hangs.raw' }],
            }),
          );
          const booted = await waitImage(ec2, ok.ImportTaskId!);
          assert.equal(booted.task.Status, 'completed', booted.task.StatusMessage);
          const started = Date.now();
          const failed = await waitImage(ec2, bad.ImportTaskId!);
          assert.equal(failed.task.Status, 'deleted');
          assert.equal(
            failed.task.StatusMessage,
            'FirstBootFailure: This import request failed because the instance failed to boot and establish network connectivity.',
          );
          assert.ok(Date.now() - started < 60_000);
          const records = await endpoint.vmImport!.tasks(CTX, 'image');
          const okRecord = records.find((t) => t.id === ok.ImportTaskId)!;
          assert.match(
            okRecord.timeline.find((e) => e.message === 'booting')?.note ?? '',
            /QEMU \(TCG\) with SeaBIOS/,
          );
          assert.ok(okRecord.timeline.some((e) => e.message === 'booted'));
          const badRecord = records.find((t) => t.id === bad.ImportTaskId)!;
          assert.deepEqual(
            badRecord.timeline.slice(-3).map((e) => [e.status, e.message]),
            [
              ['active', 'booting'],
              ['deleting', failed.task.StatusMessage],
              ['deleted', failed.task.StatusMessage],
            ],
          );
          // The failed task's snapshot is gone; the good one's stays, its AMI's root.
          assert.deepEqual(
            (await endpoint.ebs.listSnapshots(CTX)).map((s) => s.snapshotId),
            [okRecord.snapshotId],
          );
          assert.equal(d.registered.length, 1);
        },
        { extra: { vmImport: d.deps } },
      );
      // A cancel while the guest boots kills QEMU at once.
      const slow = doubles({ boot: { timeoutMs: 600_000, memoryMiB: 128 } });
      slow.objects.set('imports/hangs.raw', hangs);
      await withCloud(
        async ({ url, endpoint }) => {
          const ec2 = ec2Client(url);
          const { ImportTaskId: id } = await ec2.send(
            new ImportImageCommand({
              DiskContainers: [{ Format: 'RAW', Url: 's3://imports/hangs.raw' }],
            }),
          );
          await waitUntil(ec2, id!, (t) => t.StatusMessage === 'booting');
          await new Promise((r) => setTimeout(r, 300));
          assert.ok(qemuChildren() > 0, 'QEMU is running');
          const started = Date.now();
          await ec2.send(new CancelImportTaskCommand({ ImportTaskId: id }));
          const { task } = await waitImage(ec2, id!);
          assert.equal(task.Status, 'deleted');
          assert.ok(Date.now() - started < 10_000);
          assert.equal(qemuChildren(), 0);
          assert.deepEqual(await endpoint.ebs.listSnapshots(CTX), []);
        },
        { extra: { vmImport: slow.deps } },
      );
    });
  });

  it('lists tasks by id, task-state and tag, a page at a time, and honours ClientToken', async () => {
    await withTempDir(async (dir) => {
      const raw = await makeDebianDisk(dir);
      const d = doubles();
      d.objects.set('imports/debian.raw', raw);
      await withCloud(
        async ({ url }) => {
          const ec2 = ec2Client(url);
          const ids: string[] = [];
          for (let i = 0; i < 5; i++) {
            const r = await ec2.send(
              new ImportSnapshotCommand({
                DiskContainer: container,
                TagSpecifications: [
                  {
                    ResourceType: 'import-snapshot-task',
                    Tags: [{ Key: 'n', Value: String(i % 2) }],
                  },
                ],
              }),
            );
            ids.push(r.ImportTaskId!);
          }
          // A failing one (no such object), to filter on its state.
          const gone = await ec2.send(
            new ImportSnapshotCommand({ DiskContainer: { Url: 's3://imports/none.raw' } }),
          );
          const list = async (input: DescribeImportSnapshotTasksCommandInput = {}) => {
            const seen: string[] = [];
            let token: string | undefined;
            let pages = 0;
            do {
              const r = await ec2.send(
                new DescribeImportSnapshotTasksCommand({
                  ...input,
                  MaxResults: 2,
                  NextToken: token,
                }),
              );
              seen.push(...(r.ImportSnapshotTasks ?? []).map((t) => t.ImportTaskId!));
              token = r.NextToken;
              pages++;
            } while (token !== undefined);
            return { seen, pages };
          };
          for (const id of [...ids, gone.ImportTaskId!]) {
            const end = Date.now() + 30_000;
            for (;;) {
              const r = await ec2.send(
                new DescribeImportSnapshotTasksCommand({ ImportTaskIds: [id] }),
              );
              const s = r.ImportSnapshotTasks?.[0]?.SnapshotTaskDetail?.Status;
              if (s === 'completed' || s === 'deleted') break;
              assert.ok(Date.now() < end);
              await new Promise((r) => setTimeout(r, 20));
            }
          }
          const all = await list();
          assert.deepEqual(all.seen, [...ids, gone.ImportTaskId]);
          assert.equal(all.pages, 3);
          assert.deepEqual(
            (await list({ Filters: [{ Name: 'task-state', Values: ['deleted'] }] })).seen,
            [gone.ImportTaskId],
          );
          assert.deepEqual((await list({ Filters: [{ Name: 'tag:n', Values: ['1'] }] })).seen, [
            ids[1],
            ids[3],
          ]);
          assert.deepEqual((await list({ ImportTaskIds: [ids[4]!, ids[0]!] })).seen, [
            ids[0],
            ids[4],
          ]);
          await assert.rejects(
            ec2.send(new DescribeImportSnapshotTasksCommand({ NextToken: 'not-a-token' })),
            { name: 'InvalidParameterValue' },
          );
          // The image task list does not show snapshot tasks.
          const images = await ec2.send(new DescribeImportImageTasksCommand({}));
          assert.deepEqual(images.ImportImageTasks, []);
          // The same ClientToken gives the same task; with other parameters it is refused.
          const a = await ec2.send(
            new ImportImageCommand({ ClientToken: 'tok-1', DiskContainers: [container] }),
          );
          const b = await ec2.send(
            new ImportImageCommand({ ClientToken: 'tok-1', DiskContainers: [container] }),
          );
          assert.equal(a.ImportTaskId, b.ImportTaskId);
          await assert.rejects(
            ec2.send(
              new ImportImageCommand({
                ClientToken: 'tok-1',
                Description: 'other',
                DiskContainers: [container],
              }),
            ),
            { name: 'IdempotentParameterMismatch' },
          );
          await waitImage(ec2, a.ImportTaskId!);
        },
        { extra: { vmImport: d.deps } },
      );
    });
  });

  it('survives kill -9 mid-conversion: the task starts over from its record, the orphan snapshot removed', async () => {
    await withTempDir(async (dir) => {
      const raw = await makeDebianDisk(dir);
      const data = join(dir, 'cloud');
      await mkdir(data);
      const child = spawn(process.execPath, [CHILD, data, raw], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const held = await new Promise<[string, string]>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /held (\S+) (\S+)\n/.exec(out);
          if (m !== null) resolve([m[1]!, m[2]!]);
        });
        child.on('exit', (code) => reject(new Error(`child exited ${code}: ${out}`)));
      });
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
      const [id, orphan] = held;
      const d = doubles();
      d.objects.set('imports/debian.raw', raw);
      await withCloud(
        async ({ url, endpoint }) => {
          const { task } = await waitImage(ec2Client(url), id);
          assert.equal(task.Status, 'completed', task.StatusMessage);
          const record = (await endpoint.vmImport!.tasks(CTX, 'image'))[0]!;
          assert.notEqual(record.snapshotId, orphan);
          assert.equal(await endpoint.ebs.getSnapshot(CTX, orphan), undefined);
          assert.equal(d.registered.length, 1);
        },
        { dir: data, extra: { vmImport: d.deps } },
      );
    });
  });

  it('runs at most `concurrency` tasks; a queued task cancelled before it starts ends deleted', async () => {
    await withTempDir(async (dir) => {
      const raw = await makeDebianDisk(dir);
      const g = gate('validating');
      const d = doubles({ checkpoint: g.checkpoint });
      d.objects.set('imports/debian.raw', raw);
      await withCloud(
        async ({ url }) => {
          const ec2 = ec2Client(url);
          const first = (await ec2.send(new ImportImageCommand({ DiskContainers: [container] })))
            .ImportTaskId!;
          await g.reached;
          const second = (await ec2.send(new ImportImageCommand({ DiskContainers: [container] })))
            .ImportTaskId!;
          const third = (await ec2.send(new ImportImageCommand({ DiskContainers: [container] })))
            .ImportTaskId!;
          await new Promise((r) => setTimeout(r, 200));
          // One worker, held in validating: the others wait as pending.
          for (const id of [second, third]) {
            const t = await waitUntil(ec2, id, () => true);
            assert.equal(t.StatusMessage, 'pending');
          }
          const r = await ec2.send(new CancelImportTaskCommand({ ImportTaskId: second }));
          assert.equal(r.State, 'deleting');
          const cancelled = await waitImage(ec2, second);
          assert.equal(cancelled.task.Status, 'deleted');
          assert.equal(cancelled.task.StatusMessage, 'The import task was cancelled.');
          g.open();
          assert.equal((await waitImage(ec2, first)).task.Status, 'completed');
          assert.equal((await waitImage(ec2, third)).task.Status, 'completed');
        },
        { extra: { vmImport: { ...d.deps, concurrency: 1 } } },
      );
    });
  });

  it('fails a task interrupted by more restarts than it may resume from', async () => {
    await withTempDir(async (dir) => {
      let id = '';
      for (let open = 1; open <= 6; open++) {
        const g = gate('validating');
        const d = doubles({ checkpoint: g.checkpoint });
        await withCloud(
          async ({ url }) => {
            if (open === 1)
              id = (
                await ec2Client(url).send(new ImportImageCommand({ DiskContainers: [container] }))
              ).ImportTaskId!;
            assert.equal(await g.reached, id);
          },
          { dir, extra: { vmImport: d.deps } },
        );
      }
      const d = doubles();
      await withCloud(
        async ({ url, endpoint }) => {
          const { task } = await waitImage(ec2Client(url), id);
          assert.equal(task.Status, 'deleted');
          assert.equal(
            task.StatusMessage,
            'ServerError: an internal error has occurred during conversion.',
          );
          const record = (await endpoint.vmImport!.tasks(CTX, 'image'))[0]!;
          assert.equal(
            record.timeline.filter((e) => e.note === 'resumed after a restart of the endpoint')
              .length,
            5,
          );
        },
        { dir, extra: { vmImport: d.deps } },
      );
    });
  });

  it('boots a UEFI-only disk with OVMF and registers it as uefi', {
    skip:
      haveQemu && haveUefiTools ? false : 'qemu-system-x86_64, OVMF or the GRUB EFI tools missing',
  }, async () => {
    await withTempDir(async (dir) => {
      const disk = await makeUefiDisk(dir);
      const d = doubles({ boot: { timeoutMs: 180_000, memoryMiB: 256 } });
      d.objects.set('imports/uefi.raw', disk);
      await withCloud(
        async ({ url, endpoint }) => {
          const ec2 = ec2Client(url);
          const { ImportTaskId: id } = await ec2.send(
            new ImportImageCommand({ DiskContainers: [{ Url: 's3://imports/uefi.raw' }] }),
          );
          const { task } = await waitImage(ec2, id!, 240_000);
          assert.equal(task.Status, 'completed', task.StatusMessage);
          assert.equal(task.BootMode, 'uefi');
          const record = (await endpoint.vmImport!.tasks(CTX, 'image'))[0]!;
          assert.equal(
            record.timeline.find((e) => e.message === 'booting')?.note,
            'QEMU (TCG) with OVMF',
          );
          assert.equal(d.registered[0]?.input.bootMode, 'uefi');
        },
        { extra: { vmImport: d.deps } },
      );
    });
  });

  it('keeps accounts and regions apart', async () => {
    const other = { accessKeyId: 'AKIAOTHERIMPORT01', secretAccessKey: 'import-secret' };
    const d = doubles();
    await withCloud(
      async ({ url }) => {
        const mine = ec2Client(url);
        const { ImportTaskId: id } = await mine.send(
          new ImportImageCommand({ DiskContainers: [{ Url: 's3://imports/none.raw' }] }),
        );
        await waitImage(mine, id!);
        const theirs = new EC2Client({
          endpoint: url,
          region: 'us-east-1',
          credentials: other,
          maxAttempts: 1,
        });
        assert.deepEqual(
          (await theirs.send(new DescribeImportImageTasksCommand({}))).ImportImageTasks,
          [],
        );
        await assert.rejects(theirs.send(new CancelImportTaskCommand({ ImportTaskId: id })), {
          name: 'InvalidConversionTaskId',
        });
        const west = ec2Client(url, 'us-west-2');
        assert.deepEqual(
          (await west.send(new DescribeImportImageTasksCommand({}))).ImportImageTasks,
          [],
        );
        assert.equal(
          (await mine.send(new DescribeImportImageTasksCommand({}))).ImportImageTasks?.length,
          1,
        );
      },
      { config: { accounts: [{ id: '222222222222', ...other }] }, extra: { vmImport: d.deps } },
    );
  });
});
