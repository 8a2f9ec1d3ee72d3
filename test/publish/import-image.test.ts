import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  DescribeImagesCommand,
  DescribeImportImageTasksCommand,
  DescribeImportSnapshotTasksCommand,
  DescribeSnapshotsCommand,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import {
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { IMAGE_STEPS, SNAPSHOT_STEPS } from '../../src/cloud/import/index.js';
import { type FerryError, isFerryError } from '../../src/errors/index.js';
import { cancelImportTask, cleanUpImport } from '../../src/publish/aws/import-cleanup.js';
import { describeTask, startTask } from '../../src/publish/aws/import-task.js';
import { prepareImportDisk } from '../../src/publish/aws/prepare-import-disk.js';
import { uploadFile } from '../../src/publish/aws/s3-upload.js';
import {
  type ImportImageOptions,
  importImage,
  type TimelineEntry,
} from '../../src/publish/aws/vm-import.js';
import type { PublishEvent } from '../../src/publish/types.js';
import { withCloud } from '../helpers/cloud.js';
import { haveDiskTools, makeDebianDisk } from '../helpers/import-disks.js';
import { memoryCheckpoint } from '../helpers/memory-checkpoint.js';
import { withTempDir } from '../helpers/qemu.js';
import { s3Client } from '../helpers/s3.js';
import { ec2Client } from '../helpers/vm-import.js';

const code = (c: string) => (e: unknown) => {
  assert.ok(isFerryError(e), String(e));
  assert.equal(e.code, c, e.message);
  return true;
};

/** Uploads `path` to s3://imports/KEY (the endpoint's own S3, which its VM Import reads). */
async function upload(s3: S3Client, path: string, key: string): Promise<void> {
  await uploadFile(s3, {
    bucket: 'imports',
    key,
    path,
    createBucket: true,
    checkpoint: memoryCheckpoint<{ uploadId: string }>().checkpoint,
  });
}

async function objectExists(s3: S3Client, key: string): Promise<boolean> {
  return s3.send(new HeadObjectCommand({ Bucket: 'imports', Key: key })).then(
    () => true,
    () => false,
  );
}

function options(
  ec2: EC2Client,
  s3: S3Client,
  key: string,
  extra: Partial<ImportImageOptions> = {},
): ImportImageOptions {
  return {
    clients: { ec2, s3 },
    bucket: 'imports',
    key,
    format: 'vmdk',
    mode: 'image',
    description: 'web 1234abcd',
    architecture: 'x86_64',
    encrypted: false,
    clientToken: `ferry-${key}`,
    tags: { 'ferry:stream': 'web' },
    checkpoint: memoryCheckpoint<{ taskId: string }>().checkpoint,
    pollMs: 25,
    stallMs: 20_000,
    timeoutMs: 60_000,
    ...extra,
  };
}

/** The timeline's active states come in `order`, progress never falls, and it ends completed. */
function assertWalk(timeline: readonly TimelineEntry[], order: readonly string[]): void {
  assert.ok(timeline.length >= 2, JSON.stringify(timeline));
  assert.equal(timeline.at(-1)?.status, 'completed');
  let at = -1;
  let progress = 0;
  for (const e of timeline.slice(0, -1)) {
    assert.equal(e.status, 'active', JSON.stringify(e));
    const m = e.statusMessage ?? '';
    const i = order.findIndex((o) => m === o || m.startsWith(`${o} (`));
    assert.ok(i >= 0, `unknown state ${m}`);
    assert.ok(i >= at, `${m} came after ${order[at]}`);
    at = i;
    assert.ok((e.progress ?? 0) >= progress, `progress fell to ${e.progress}`);
    progress = e.progress ?? 0;
  }
  const times = timeline.map((e) => Date.parse(e.at));
  assert.ok(times.every((t, i) => i === 0 || t >= times[i - 1]!));
}

/** A checkpoint hook for the endpoint's VM Import that holds tasks at `point` until released. */
function hold(point: string) {
  let release!: () => void;
  const released = new Promise<void>((r) => {
    release = r;
  });
  let reach!: (id: string) => void;
  const reached = new Promise<string>((r) => {
    reach = r;
  });
  return {
    checkpoint: async (id: string, p: string) => {
      if (p !== point) return;
      reach(id);
      await released;
    },
    reached,
    release: () => release(),
  };
}

describe('publish: VM Import', {
  skip: haveDiskTools ? false : 'mke2fs or sfdisk missing',
  timeout: 60_000,
}, () => {
  it('imports a bootable-looking VMDK into an AMI, recording AWS states in order, and removes the object', async () => {
    await withTempDir(async (dir) => {
      const raw = await makeDebianDisk(dir);
      await mkdir(join(dir, 'out'));
      const disk = await prepareImportDisk(raw, join(dir, 'out'));
      assert.equal(disk.path, join(dir, 'out', 'disk.vmdk'));
      assert.ok(disk.bytes > 0 && disk.bytes < disk.virtualSize);
      await withCloud(
        async ({ url }) => {
          const ec2 = ec2Client(url);
          const s3 = s3Client(url);
          await upload(s3, disk.path, 'web.vmdk');
          const cp = memoryCheckpoint<{ taskId: string }>();
          const events: PublishEvent[] = [];
          const r = await importImage(
            options(ec2, s3, 'web.vmdk', {
              checkpoint: cp.checkpoint,
              placement: 'prod/us-east-1',
              onEvent: (e) => events.push(e),
              localImage: raw,
            }),
          );
          assert.match(r.imageId, /^ami-/);
          assert.match(r.taskId, /^import-ami-/);
          assert.deepEqual(cp.saves, [{ taskId: r.taskId }]);
          assert.equal(r.snapshotIds.length, 1);
          assertWalk(r.timeline, IMAGE_STEPS);
          const steps = new Set(r.timeline.map((e) => e.statusMessage));
          assert.ok(steps.has('converting') && steps.size >= 3, JSON.stringify([...steps]));
          assert.equal(events.length, r.timeline.length);
          assert.deepEqual(events[0], {
            type: 'import',
            placement: 'prod/us-east-1',
            status: r.timeline[0]!.status,
            progress: r.timeline[0]!.progress,
            message: r.timeline[0]!.statusMessage,
          });
          assert.ok(r.seconds > 0);
          const images = await ec2.send(new DescribeImagesCommand({ ImageIds: [r.imageId] }));
          const image = images.Images?.[0];
          assert.equal(image?.Architecture, 'x86_64');
          assert.equal(image?.BlockDeviceMappings?.[0]?.Ebs?.SnapshotId, r.snapshotIds[0]);
          // The task carries the tags and description given.
          const task = (
            await ec2.send(new DescribeImportImageTasksCommand({ ImportTaskIds: [r.taskId] }))
          ).ImportImageTasks?.[0];
          assert.deepEqual(task?.Tags, [{ Key: 'ferry:stream', Value: 'web' }]);
          assert.equal(task?.Description, 'web 1234abcd');
          assert.equal(r.objectDeleted, true);
          assert.equal(await objectExists(s3, 'web.vmdk'), false);
        },
        { extra: { vmImport: { boot: { enabled: false } } } },
      );
    });
  });

  it("fails an image inspect rejects with AWS's message and inspect's explanation, and cleans up", async () => {
    await withTempDir(async (dir) => {
      const raw = await makeDebianDisk(dir, { osRelease: false });
      await withCloud(
        async ({ url }) => {
          const ec2 = ec2Client(url);
          const s3 = s3Client(url);
          await upload(s3, raw, 'no-os.raw');
          let error: FerryError | undefined;
          await assert.rejects(
            importImage(options(ec2, s3, 'no-os.raw', { format: 'raw', localImage: raw })),
            (e: unknown) => {
              code('FERRY_IMPORT_FAILED')(e);
              error = e as FerryError;
              return true;
            },
          );
          assert.ok(error !== undefined);
          // AWS's words, as the task reported them.
          assert.match(error.message, /ClientError: Unknown OS \/ Missing OS files\./);
          assert.equal(error.details.statusMessage, 'ClientError: Unknown OS / Missing OS files.');
          // Deleting, or already deleted when the poll came late: both carry AWS's reason.
          assert.ok(['deleting', 'deleted'].includes(String(error.details.status)));
          // inspect's explanation: its verdict, the finding code and its text.
          assert.equal(error.details.inspectVerdict, 'fail');
          assert.match(String(error.details.findings), /OS_UNKNOWN/);
          assert.match(error.hint ?? '', /aws-import says fail: OS_UNKNOWN \(error\)/);
          assert.match(error.hint ?? '', /no os-release/);
          assert.match(error.hint ?? '', /what AWS answered/);
          assert.equal(await objectExists(s3, 'no-os.raw'), false);
          // Without the local image the hint says how to get the explanation.
          await upload(s3, raw, 'no-os-2.raw');
          await assert.rejects(
            importImage(options(ec2, s3, 'no-os-2.raw', { format: 'raw' })),
            (e: unknown) => {
              code('FERRY_IMPORT_FAILED')(e);
              assert.match((e as FerryError).hint ?? '', /ferry inspect IMAGE --target aws-import/);
              return true;
            },
          );
        },
        { extra: { vmImport: { boot: { enabled: false } } } },
      );
    });
  });

  it('cancels a task that makes no progress within stallMs, and one that takes longer than timeoutMs', async () => {
    await withTempDir(async (dir) => {
      const raw = await makeDebianDisk(dir);
      // Every task of this endpoint sticks in validating: no state change, no progress.
      const stuck = hold('validating');
      await withCloud(
        async ({ url }) => {
          const ec2 = ec2Client(url);
          const s3 = s3Client(url);
          await upload(s3, raw, 'stuck.raw');
          const stallMs = 1500;
          const started = Date.now();
          let error: FerryError | undefined;
          await assert.rejects(
            importImage(options(ec2, s3, 'stuck.raw', { format: 'raw', stallMs, pollMs: 100 })),
            (e: unknown) => {
              code('FERRY_IMPORT_STALLED')(e);
              error = e as FerryError;
              return true;
            },
          );
          const took = Date.now() - started;
          assert.ok(took >= stallMs, `gave up after ${took} ms`);
          assert.ok(took < stallMs + 8000, `took ${took} ms`);
          assert.ok(error !== undefined);
          assert.equal(error.details.status, 'active');
          assert.equal(error.details.statusMessage, 'validating');
          assert.equal(error.details.finalStatus, 'deleted');
          assert.ok(Number(error.details.seconds) >= stallMs / 1000);
          const task = (
            await ec2.send(
              new DescribeImportImageTasksCommand({
                ImportTaskIds: [String(error.details.taskId)],
              }),
            )
          ).ImportImageTasks?.[0];
          assert.equal(task?.Status, 'deleted');
          assert.match(task?.StatusMessage ?? '', /^Cancelled by ferry: no progress for/);
          assert.equal(await objectExists(s3, 'stuck.raw'), false);

          // Timeout: stall detection off in effect, the overall limit trips.
          await upload(s3, raw, 'slow.raw');
          await assert.rejects(
            importImage(
              options(ec2, s3, 'slow.raw', {
                format: 'raw',
                stallMs: 600_000,
                timeoutMs: 800,
                pollMs: 100,
              }),
            ),
            (e: unknown) => {
              code('FERRY_IMPORT_TIMEOUT')(e);
              assert.equal((e as FerryError).details.finalStatus, 'deleted');
              return true;
            },
          );
        },
        { extra: { vmImport: { boot: { enabled: false }, checkpoint: stuck.checkpoint } } },
      );
    });
  });

  it('resumes from a checkpointed task id after an abort, and ImportSnapshot + RegisterImage', async () => {
    await withTempDir(async (dir) => {
      const raw = await makeDebianDisk(dir);
      const held = hold('snapshot-started');
      await withCloud(
        async ({ url }) => {
          const ec2 = ec2Client(url);
          const s3 = s3Client(url);
          await upload(s3, raw, 'resume.raw');
          const cp = memoryCheckpoint<{ taskId: string }>();
          const stop = new AbortController();
          const first = importImage(
            options(ec2, s3, 'resume.raw', {
              format: 'raw',
              checkpoint: cp.checkpoint,
              signal: stop.signal,
            }),
          );
          await held.reached;
          stop.abort();
          await assert.rejects(first, code('FERRY_ABORTED'));
          const taskId = cp.value()?.taskId;
          assert.match(taskId ?? '', /^import-ami-/);
          // The abort left the task running and the object in place.
          assert.equal(await objectExists(s3, 'resume.raw'), true);
          held.release();
          // Another client token: only the checkpoint can lead back to the same task.
          const r = await importImage(
            options(ec2, s3, 'resume.raw', {
              format: 'raw',
              checkpoint: cp.checkpoint,
              clientToken: 'another-token',
            }),
          );
          assert.equal(r.taskId, taskId);
          assert.match(r.imageId, /^ami-/);
          assert.equal(r.timeline.at(-1)?.status, 'completed');
          const all = await ec2.send(new DescribeImportImageTasksCommand({}));
          assert.equal(all.ImportImageTasks?.length, 1);
          assert.equal(cp.saves.length, 1);

          // ImportSnapshot, then ferry's RegisterImage: hvm, ENA, /dev/xvda, the architecture.
          await upload(s3, raw, 'snap.raw');
          const snapCp = memoryCheckpoint<{ taskId: string }>();
          const s = await importImage(
            options(ec2, s3, 'snap.raw', {
              format: 'raw',
              mode: 'snapshot',
              imageName: 'web-1234abcd5678',
              checkpoint: snapCp.checkpoint,
              bootMode: 'legacy-bios',
              encrypted: true,
            }),
          );
          assert.match(s.taskId, /^import-snap-/);
          // Encrypted with the account's default EBS key.
          const snapshot = (
            await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [...s.snapshotIds] }))
          ).Snapshots?.[0];
          assert.equal(snapshot?.Encrypted, true);
          assert.match(snapshot?.KmsKeyId ?? '', /^arn:aws:kms:/);
          assertWalk(s.timeline, SNAPSHOT_STEPS);
          const image = (await ec2.send(new DescribeImagesCommand({ ImageIds: [s.imageId] })))
            .Images?.[0];
          assert.equal(image?.Name, 'web-1234abcd5678');
          assert.equal(image?.VirtualizationType, 'hvm');
          assert.equal(image?.EnaSupport, true);
          assert.equal(image?.Architecture, 'x86_64');
          assert.equal(image?.RootDeviceName, '/dev/xvda');
          assert.equal(image?.BootMode, 'legacy-bios');
          assert.equal(image?.BlockDeviceMappings?.[0]?.Ebs?.SnapshotId, s.snapshotIds[0]);
          assert.equal(await objectExists(s3, 'snap.raw'), false);
          // Run again from its checkpoint: the same completed task, the image found by name.
          const again = await importImage(
            options(ec2, s3, 'snap.raw', {
              format: 'raw',
              mode: 'snapshot',
              imageName: 'web-1234abcd5678',
              checkpoint: snapCp.checkpoint,
              bootMode: 'legacy-bios',
              encrypted: true,
            }),
          );
          assert.deepEqual([again.taskId, again.imageId], [s.taskId, s.imageId]);
          const snaps = await ec2.send(new DescribeImportSnapshotTasksCommand({}));
          assert.equal(snaps.ImportSnapshotTasks?.length, 1);
        },
        { extra: { vmImport: { boot: { enabled: false }, checkpoint: held.checkpoint } } },
      );
    });
  });

  it('cleanUpImport cancels an active task, aborts the upload and deletes the object', async () => {
    await withTempDir(async (dir) => {
      const raw = await makeDebianDisk(dir);
      const stuck = hold('validating');
      await withCloud(
        async ({ url }) => {
          const ec2 = ec2Client(url);
          const s3 = s3Client(url);
          await upload(s3, raw, 'left.raw');
          const open = await s3.send(
            new CreateMultipartUploadCommand({ Bucket: 'imports', Key: 'left.raw' }),
          );
          const taskId = await startTask(ec2, {
            mode: 'image',
            bucket: 'imports',
            key: 'left.raw',
            format: 'raw',
            description: 'left',
            architecture: 'x86_64',
            encrypted: false,
            clientToken: 'left',
            tags: {},
          });
          await stuck.reached;
          // A lost answer is harmless: the same ClientToken gives the same task back.
          const same = await startTask(ec2, {
            mode: 'image',
            bucket: 'imports',
            key: 'left.raw',
            format: 'raw',
            description: 'left',
            architecture: 'x86_64',
            encrypted: false,
            clientToken: 'left',
            tags: {},
          });
          assert.equal(same, taskId);
          const report = await cleanUpImport({
            clients: { ec2, s3 },
            bucket: 'imports',
            key: 'left.raw',
            uploadId: open.UploadId!,
            taskId,
            reason: 'the placement failed',
          });
          assert.deepEqual(report, {
            cancelled: true,
            uploadAborted: true,
            objectDeleted: true,
            errors: [],
          });
          assert.equal(await objectExists(s3, 'left.raw'), false);
          const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: 'imports' }));
          assert.deepEqual(uploads.Uploads ?? [], []);
          const task = await describeTask(ec2, 'image', taskId);
          assert.ok(task?.status === 'deleting' || task?.status === 'deleted');
          assert.equal(task?.statusMessage, 'the placement failed');
          // Again: nothing left to cancel, abort or delete, and that is no error.
          const again = await cleanUpImport({
            clients: { ec2, s3 },
            bucket: 'imports',
            key: 'left.raw',
            uploadId: open.UploadId!,
            taskId,
          });
          assert.equal(again.cancelled, false);
          assert.deepEqual(again.errors, []);
          assert.equal(await cancelImportTask(ec2, 'import-ami-00000000000000000', 'x'), false);
        },
        { extra: { vmImport: { boot: { enabled: false }, checkpoint: stuck.checkpoint } } },
      );
    });
  });

  it('refuses bad options with FERRY_USAGE before calling AWS', async () => {
    const none = {} as EC2Client;
    const s3 = {} as S3Client;
    for (const extra of [
      { pollMs: 0 },
      { stallMs: -1 },
      { timeoutMs: Number.NaN },
      { clientToken: '' },
      { clientToken: 'x'.repeat(65) },
      { mode: 'snapshot' as const },
      { kmsKeyId: 'arn:aws:kms:us-east-1:000000000000:key/k' },
    ])
      await assert.rejects(importImage(options(none, s3, 'k', extra)), code('FERRY_USAGE'));
  });
});
