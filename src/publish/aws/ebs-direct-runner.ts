/**
 * The EBS direct method for one placement: find (a re-run finds its image by
 * tags), snapshot (incremental against the stream's newest snapshot there
 * when its digests are known), register, tag, share and, when asked, verify.
 * Each is a journaled step; cleanUp removes what this run made after a
 * failure: the image first, then its snapshot.
 */

import { createHash } from 'node:crypto';
import { FerryError } from '../../errors/index.js';
import type { BlockDigests } from '../block-digests.js';
import { readDigests } from '../block-digests.js';
import type { MethodContext, MethodRunner, PlacementOutcome } from '../publish.js';
import { DEFAULT_RETRY_POLICY, type RetryPolicy, retryStrategyFor } from '../retry.js';
import { digestsFile } from '../state-paths.js';
import { awsPlacement } from '../types.js';
import { type AwsClients, awsClients } from './clients.js';
import { deleteSnapshot, type EbsCheckpoint, uploadSnapshot } from './ebs-upload.js';
import { findParent } from './find-parent.js';
import { ferryTags, findStep, imageName, revisionOf, tagAndShare } from './image-steps.js';
import { resolveKmsKey } from './kms-key.js';
import { deregisterImage, findImage, registerImage } from './register.js';
import { assertVerified, verifySnapshot } from './verify.js';

export interface EbsDirectOptions {
  readonly version: string;
  readonly verify?: boolean;
  readonly retry?: RetryPolicy;
}

interface SnapshotCheckpoint {
  readonly attempt: number;
  readonly ebs?: EbsCheckpoint;
}

export function ebsDirectRunner(options: EbsDirectOptions): MethodRunner {
  const clientsOf = (ctx: MethodContext): AwsClients =>
    awsClients(ctx.placement, {
      concurrency: ctx.target.concurrency,
      retryStrategy: retryStrategyFor(options.retry ?? DEFAULT_RETRY_POLICY),
      ...(ctx.signal === undefined ? {} : { signal: ctx.signal }),
    });
  return {
    async run(ctx: MethodContext): Promise<PlacementOutcome> {
      const { steps, signal, image, request } = ctx;
      const placement = awsPlacement(ctx.placement);
      const clients = clientsOf(ctx);
      try {
        const revision = revisionOf(ctx);
        const tags = ferryTags(ctx, options.version);
        const found = await findStep(ctx, clients);
        let imageId: string;
        let snapshotIds: string[];
        let sent = {
          blocksSent: 0,
          blocksSkipped: 0,
          bytesSent: 0,
          parentSnapshotId: null as string | null,
        };
        if (found.existing === true) {
          imageId = String(found.imageId);
          snapshotIds = (found.snapshotIds as string[]) ?? [];
          ctx.emit({
            type: 'step',
            placement: placement.key,
            step: 'find',
            state: 'done',
            detail: `${imageId} exists`,
          });
        } else {
          const snap = await steps.run('snapshot', async () => {
            ctx.emit({
              type: 'step',
              placement: placement.key,
              step: 'snapshot',
              state: 'started',
            });
            const kmsKeyArn = placement.encrypted
              ? await resolveKmsKey(clients, placement.kmsKeyId, signal)
              : undefined;
            const parent = await findParent(
              clients,
              {
                stream: request.stream,
                encrypted: placement.encrypted,
                ...(kmsKeyArn === undefined ? {} : { kmsKeyArn }),
                signal,
              },
              async (hash) => loadDigests(ctx, hash),
            );
            const journal = steps.checkpoint<SnapshotCheckpoint>('snapshot');
            for (;;) {
              const at = (await journal.load()) ?? { attempt: 0 };
              const token = createHash('sha256')
                .update(
                  `${ctx.runId}\0${placement.key}\0${image.source.contentHash}\0${at.attempt}`,
                )
                .digest('hex')
                .slice(0, 64);
              try {
                const r = await uploadSnapshot({
                  clients,
                  placement,
                  source: image.source,
                  ...(parent === undefined
                    ? {}
                    : { parent: { snapshotId: parent.snapshotId, digests: parent.digests } }),
                  encrypted: placement.encrypted,
                  ...(kmsKeyArn === undefined ? {} : { kmsKeyId: kmsKeyArn }),
                  clientToken: token,
                  description: `ferry ${request.stream} ${revision.slice(0, 12)}`,
                  tags,
                  concurrency: ctx.target.concurrency,
                  checkpoint: {
                    load: async () => (await journal.load())?.ebs,
                    save: async (ebs) => journal.save({ attempt: at.attempt, ebs }),
                  },
                  signal,
                  onEvent: ctx.emit,
                });
                return {
                  snapshotId: r.snapshotId,
                  parentSnapshotId: parent?.snapshotId ?? null,
                  blocksSent: r.blocksSent,
                  blocksSkipped: r.blocksSkipped,
                  blocksResumed: r.blocksResumed,
                  changedBlocks: r.changedBlocks,
                  bytesSent: r.bytesSent,
                  seconds: r.seconds,
                  start: r.start,
                };
              } catch (error) {
                if (
                  !(error instanceof FerryError && error.code === 'FERRY_EBS_SNAPSHOT_RESTART') ||
                  at.attempt >= 3
                )
                  throw error;
                await journal.save({ attempt: at.attempt + 1 });
              }
            }
          });
          const snapshotId = String(snap.snapshotId);
          snapshotIds = [snapshotId];
          sent = {
            blocksSent: Number(snap.blocksSent),
            blocksSkipped: Number(snap.blocksSkipped),
            bytesSent: Number(snap.bytesSent),
            parentSnapshotId: (snap.parentSnapshotId as string | null) ?? null,
          };
          const reg = await steps.run('register', async () => ({
            imageId: await registerImage(clients, {
              name: imageName(request.stream, revision),
              snapshotId,
              architecture: image.facts.architecture,
              ...(image.facts.bootMode === undefined ? {} : { bootMode: image.facts.bootMode }),
              enaSupport: image.facts.enaSupport,
              rootDeviceName: image.facts.rootDeviceName,
              description: `ferry ${request.stream} ${revision.slice(0, 12)}`,
              tags,
              signal,
            }),
            snapshotIds,
          }));
          imageId = String(reg.imageId);
        }
        await tagAndShare(ctx, clients, imageId, snapshotIds, tags);
        if (options.verify === true && found.existing !== true) {
          await steps.run('verify', async () => {
            const r = await verifySnapshot(clients, snapshotIds[0]!, image.source, { signal });
            assertVerified(snapshotIds[0]!, r);
            return { blocks: r.blocks };
          });
        }
        return {
          imageId,
          snapshotIds,
          existing: found.existing === true,
          ...sent,
        };
      } finally {
        clients.destroy();
      }
    },

    async cleanUp(ctx: MethodContext): Promise<string[]> {
      const removed: string[] = [];
      const found = ctx.steps.done('find');
      if (found?.existing === true) return removed;
      const clients = clientsOf(ctx);
      try {
        const reg = ctx.steps.done('register');
        const snapCp = await ctx.steps.checkpoint<SnapshotCheckpoint>('snapshot').load();
        const snap = ctx.steps.done('snapshot');
        const snapshotId = (snap?.snapshotId as string | undefined) ?? snapCp?.ebs?.snapshotId;
        let imageId = reg?.imageId as string | undefined;
        if (imageId === undefined) {
          // A register whose answer was lost: the image exists under its name and tags.
          const f = await findImage(clients, ctx.request.stream, revisionOf(ctx)).catch(
            () => undefined,
          );
          if (f !== undefined && snapshotId !== undefined && f.snapshotIds.includes(snapshotId))
            imageId = f.imageId;
        }
        if (imageId !== undefined) {
          const r = await deregisterImage(clients, imageId, {
            snapshotIds: snapshotId === undefined ? [] : [snapshotId],
          });
          removed.push(imageId, ...r.deletedSnapshots);
          return removed;
        }
        if (snapshotId !== undefined) {
          await deleteSnapshot(clients, snapshotId);
          removed.push(snapshotId);
        }
        return removed;
      } finally {
        clients.destroy();
      }
    },
  };
}

async function loadDigests(
  ctx: MethodContext,
  contentHash: string,
): Promise<BlockDigests | undefined> {
  if (!/^[0-9a-f]{64}$/.test(contentHash)) return undefined;
  try {
    const f = await readDigests(digestsFile(ctx.state, contentHash));
    return f.contentHash === contentHash ? f.digests : undefined;
  } catch {
    return undefined;
  }
}
