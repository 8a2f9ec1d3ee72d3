/**
 * What every AWS method does around its upload: find the image a re-run
 * made already (by ferry's tags), and tag and share the image and its
 * snapshots; with the names and tags that make those lookups work.
 */

import type { MethodContext } from '../publish.js';
import type { StepResult } from '../steps.js';
import { awsPlacement, TAG } from '../types.js';
import type { AwsClients } from './clients.js';
import { findImage, shareImage, tagResources } from './register.js';

/** The AMI name: unique per account and region, the same for every attempt. */
export function imageName(stream: string, revision: string): string {
  return `${stream.replace(/\//g, '-')}-${revision.slice(0, 12)}`;
}

/** The revision tag: the stream revision, or the content hash of an --image file. */
export function revisionOf(ctx: MethodContext): string {
  return ctx.request.revision ?? ctx.image.source.contentHash;
}

/** Tags ferry puts on what it makes, besides the target's own. */
export function ferryTags(ctx: MethodContext, version: string): Record<string, string> {
  return {
    ...awsPlacement(ctx.placement).tags,
    [TAG.stream]: ctx.request.stream,
    [TAG.revision]: revisionOf(ctx),
    [TAG.contentHash]: ctx.image.source.contentHash,
    [TAG.version]: version,
    [TAG.run]: ctx.runId,
  };
}

/** The find step: the available image of this stream revision, if a run made it already. */
export function findStep(ctx: MethodContext, clients: AwsClients): Promise<StepResult> {
  return ctx.steps.run('find', async () => {
    const f = await findImage(clients, ctx.request.stream, revisionOf(ctx), ctx.signal);
    return f !== undefined && f.state === 'available'
      ? { existing: true, imageId: f.imageId, snapshotIds: [...f.snapshotIds] }
      : { existing: false };
  });
}

/** The tag and share steps (both idempotent: a re-run applies them again). */
export async function tagAndShare(
  ctx: MethodContext,
  clients: AwsClients,
  imageId: string,
  snapshotIds: readonly string[],
  tags: Readonly<Record<string, string>>,
): Promise<void> {
  await ctx.steps.run('tag', async () => {
    await tagResources(clients, [imageId, ...snapshotIds], tags, ctx.signal);
    return { resources: [imageId, ...snapshotIds] };
  });
  await ctx.steps.run('share', async () => {
    const { shareWith } = awsPlacement(ctx.placement);
    await shareImage(clients, imageId, snapshotIds, shareWith, ctx.signal);
    return { accounts: [...shareWith] };
  });
}
