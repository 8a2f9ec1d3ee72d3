/**
 * The VM Import method for one placement: find (a re-run finds its image by
 * tags), upload (the image as a streamOptimized VMDK, multipart, resumable),
 * import (ImportImage, watched with a stall detector, explained by inspect
 * when AWS refuses it), tag and share. cleanUp cancels the task, aborts the
 * upload, removes the object and deregisters an image this run made.
 */

import { createHash } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError } from '../../errors/index.js';
import type { MethodContext, MethodRunner, PlacementOutcome } from '../publish.js';
import { awsPlacement } from '../types.js';
import { awsClients } from './clients.js';
import { ferryTags, findStep, imageName, revisionOf, tagAndShare } from './image-steps.js';
import { cleanUpImport } from './import-cleanup.js';
import { prepareImportDisk } from './prepare-import-disk.js';
import { deregisterImage } from './register.js';
import { uploadFile } from './s3-upload.js';
import { importImage } from './vm-import.js';

export interface VmImportRunnerOptions {
  readonly version: string;
  /** How often a task is polled (default 5 s). */
  readonly pollMs?: number;
  /** No progress for this long cancels the task (default 15 minutes). */
  readonly stallMs?: number;
  /** The whole import may take this long (default 3 hours). */
  readonly timeoutMs?: number;
}

const objectKey = (ctx: MethodContext) =>
  `ferry/${ctx.request.stream}/${revisionOf(ctx).slice(0, 12)}-${ctx.image.source.contentHash.slice(0, 12)}.vmdk`;

export function vmImportRunner(options: VmImportRunnerOptions): MethodRunner {
  const bucketOf = (ctx: MethodContext): string => {
    if (ctx.target.bucket === undefined)
      throw new FerryError(
        'FERRY_USAGE',
        `Cannot import to ${ctx.target.name}: vm-import needs a bucket`,
      );
    return ctx.target.bucket;
  };
  return {
    async run(ctx: MethodContext): Promise<PlacementOutcome> {
      const { steps, signal, image, request } = ctx;
      const placement = awsPlacement(ctx.placement);
      const clients = awsClients(placement, { concurrency: Math.min(8, ctx.target.concurrency) });
      try {
        const revision = revisionOf(ctx);
        const tags = ferryTags(ctx, options.version);
        const bucket = bucketOf(ctx);
        const key = objectKey(ctx);
        const found = await findStep(ctx, clients);
        let imageId: string;
        let snapshotIds: string[];
        let bytesSent = 0;
        if (found.existing === true) {
          imageId = String(found.imageId);
          snapshotIds = (found.snapshotIds as string[]) ?? [];
        } else {
          const up = await steps.run('upload', async () => {
            // One directory per placement: placements convert at the same time.
            const work = join(ctx.state.renders, `import-${placement.target}-${placement.region}`);
            await mkdir(work, { recursive: true });
            const disk = await prepareImportDisk(image.path, work, signal);
            try {
              const r = await uploadFile(clients.s3, {
                bucket,
                key,
                path: disk.path,
                concurrency: 4,
                checkpoint: steps.checkpoint<{ uploadId: string }>('upload'),
                createBucket: true,
                signal,
                onProgress: (p) =>
                  ctx.emit({
                    type: 'blocks',
                    placement: placement.key,
                    sent: p.partsSent,
                    skipped: p.partsReused,
                    total: p.partsTotal,
                    bytes: p.sentBytes,
                  }),
              });
              return {
                bucket,
                key,
                bytes: r.bytes,
                etag: r.etag,
                partsSent: r.partsSent,
                partsReused: r.partsReused,
              };
            } finally {
              await rm(disk.path, { force: true });
            }
          });
          bytesSent = Number(up.bytes);
          const imported = await steps.run('import', async () => {
            const taskCp = steps.checkpoint<{ taskId: string }>('import');
            const token = createHash('sha256')
              .update(`${ctx.runId}\0${placement.key}\0${image.source.contentHash}`)
              .digest('hex')
              .slice(0, 64);
            const r = await importImage({
              clients,
              bucket,
              key,
              format: 'vmdk',
              mode: 'image',
              description: `ferry ${request.stream} ${revision.slice(0, 12)}`,
              ...(image.facts.bootMode === 'uefi' || image.facts.bootMode === 'legacy-bios'
                ? { bootMode: image.facts.bootMode }
                : {}),
              architecture: image.facts.architecture,
              encrypted: placement.encrypted,
              ...(placement.kmsKeyId === undefined ? {} : { kmsKeyId: placement.kmsKeyId }),
              clientToken: token,
              tags,
              checkpoint: taskCp,
              pollMs: options.pollMs ?? 5000,
              stallMs: ctx.target.stallMs ?? options.stallMs ?? 15 * 60_000,
              timeoutMs: options.timeoutMs ?? 3 * 3600_000,
              signal,
              onEvent: ctx.emit,
              placement: placement.key,
              localImage: image.path,
              imageName: imageName(request.stream, revision),
            });
            return {
              imageId: r.imageId,
              snapshotIds: [...r.snapshotIds],
              taskId: r.taskId,
              timeline: r.timeline.map((e) => ({ ...e })),
              seconds: r.seconds,
            };
          });
          imageId = String(imported.imageId);
          snapshotIds = (imported.snapshotIds as string[]) ?? [];
        }
        await tagAndShare(ctx, clients, imageId, snapshotIds, tags);
        return {
          imageId,
          snapshotIds,
          existing: found.existing === true,
          parentSnapshotId: null,
          blocksSent: 0,
          blocksSkipped: 0,
          bytesSent,
        };
      } finally {
        clients.destroy();
      }
    },

    async cleanUp(ctx: MethodContext): Promise<string[]> {
      const removed: string[] = [];
      if (ctx.steps.done('find')?.existing === true) return removed;
      const clients = awsClients(ctx.placement, { concurrency: 2 });
      try {
        const upload = await ctx.steps.checkpoint<{ uploadId: string }>('upload').load();
        const task = await ctx.steps.checkpoint<{ taskId: string }>('import').load();
        const imported = ctx.steps.done('import');
        const bucket = ctx.target.bucket ?? '';
        const key = objectKey(ctx);
        const r = await cleanUpImport({
          clients,
          bucket,
          key,
          ...(upload?.uploadId === undefined ? {} : { uploadId: upload.uploadId }),
          ...(task?.taskId === undefined ? {} : { taskId: task.taskId }),
          reason: 'ferry publish failed in this placement',
        });
        if (r.cancelled && task !== undefined) removed.push(task.taskId);
        if (r.objectDeleted) removed.push(`s3://${bucket}/${key}`);
        if (typeof imported?.imageId === 'string') {
          const d = await deregisterImage(clients, imported.imageId, {
            snapshotIds: (imported.snapshotIds as string[]) ?? [],
          });
          removed.push(imported.imageId, ...d.deletedSnapshots);
        }
        return removed;
      } finally {
        clients.destroy();
      }
    },
  };
}
