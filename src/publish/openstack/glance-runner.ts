/**
 * The Glance method for one placement (a region of an OpenStack target):
 *
 *   find     a re-run finds its image by ferry's properties and stops there;
 *   prepare  the disk converted to the target's format (or the fs layout's
 *            kernel, initrd and root filesystem);
 *   upload   each part created under an id fixed by the run, then its data
 *            sent and checked against the local SHA-512; an AMI last, with
 *            kernel_id and ramdisk_id set;
 *   share    visibility and members, once the image is active;
 *   copy     copy-image to the target's stores.
 *
 * The upload's checkpoint names the images made so far, so a resumed run
 * carries on and a failed one removes exactly what it made (the AMI first,
 * then the ramdisk and the kernel: Glance lets an AMI outlive its kernel,
 * the reverse order would leave it pointing at nothing).
 */

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { FerryError } from '../../errors/index.js';
import { imageName, revisionOf } from '../aws/image-steps.js';
import type { MethodContext, MethodRunner, PlacementOutcome } from '../publish.js';
import type { RetryPolicy } from '../retry.js';
import type { StepResult } from '../steps.js';
import { BLOCK_SIZE, glancePlacement } from '../types.js';
import { findPublished } from './glance-catalog.js';
import { GlanceClient } from './glance-client.js';
import type { GlanceImage } from './glance-image.js';
import { type GlancePart, type PartRole, prepareParts } from './glance-parts.js';
import { GLANCE_PROPERTY, inspectProperties } from './glance-properties.js';
import { copyToStores, uploadImageData } from './glance-upload.js';
import type { ImageSession } from './image-session.js';
import { serveFile } from './serve-file.js';

export interface GlanceRunnerOptions {
  readonly version: string;
  /** Sent with every Glance request (tests act as a project with these). */
  readonly headers?: Readonly<Record<string, string>>;
  readonly retry?: RetryPolicy;
  /** Sends of one part after the first when an upload is interrupted (default 2). */
  readonly uploadRetries?: number;
}

interface UploadCheckpoint {
  /** Bumped when an image of this run had to be deleted: its id cannot be used again. */
  readonly attempt: number;
  /** The parts made and active, by role. */
  readonly done: Partial<Record<PartRole, string>>;
  /** The part being uploaded. */
  readonly current?: { readonly role: PartRole; readonly id: string };
}

/** A UUID fixed by the run, the placement, the content and the attempt: a repeated create finds the image. */
export function partId(
  runId: string,
  placement: string,
  contentHash: string,
  role: PartRole,
  attempt: number,
): string {
  const h = createHash('sha256')
    .update(`${runId}\0${placement}\0${contentHash}\0${role}\0${attempt}`)
    .digest();
  h[6] = (h[6]! & 0x0f) | 0x40;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

async function fileSha512(path: string, signal: AbortSignal): Promise<string> {
  const hash = createHash('sha512');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20, signal }))
    hash.update(chunk as Buffer);
  return hash.digest('hex');
}

const PART_SUFFIX: Readonly<Record<PartRole, string>> = {
  kernel: '-kernel',
  ramdisk: '-ramdisk',
  root: '',
};

function clientFor(options: GlanceRunnerOptions, session: ImageSession): GlanceClient {
  return new GlanceClient({
    session,
    ...(options.headers === undefined ? {} : { headers: options.headers }),
    ...(options.retry === undefined ? {} : { retry: options.retry }),
  });
}

export function glanceRunner(options: GlanceRunnerOptions): MethodRunner {
  return {
    async run(ctx: MethodContext): Promise<PlacementOutcome> {
      const placement = glancePlacement(ctx.placement);
      const { steps, signal, image, request } = ctx;
      const g = placement.glance;
      const client = clientFor(options, await placement.session());
      try {
        const revision = revisionOf(ctx);
        const contentHash = image.source.contentHash;
        const found = await steps.run('find', async () => {
          const f = await findPublished(client, placement.target, request.stream, revision, signal);
          return f !== undefined && f.status === 'active' && f.hash === contentHash
            ? { existing: true, imageId: f.imageId, partIds: [...f.partIds] }
            : { existing: false };
        });
        if (found.existing === true) {
          const imageId = String(found.imageId);
          ctx.emit({
            type: 'step',
            placement: placement.key,
            step: 'find',
            state: 'done',
            detail: `${imageId} exists`,
          });
          return {
            imageId,
            snapshotIds: (found.partIds as string[]) ?? [],
            existing: true,
            parentSnapshotId: null,
            blocksSent: 0,
            blocksSkipped: 0,
            bytesSent: 0,
          };
        }
        // The files to upload, unless an earlier attempt uploaded them all;
        // they are made again on a resume (they are not kept across runs).
        const uploaded = steps.done('upload') ?? (await prepareAndUpload(ctx, client, options));
        const imageId = String(uploaded.imageId);
        const partIds = (uploaded.partIds as string[]) ?? [];
        await steps.run('share', async () => {
          // Kernel and ramdisk go with the image: whoever may boot it must read them.
          for (const id of [imageId, ...partIds]) {
            if (g.visibility !== 'private')
              await client.updateImage(id, { set: { visibility: g.visibility } }, { signal });
            for (const member of g.members) await addMember(client, id, member, signal);
          }
          return { visibility: g.visibility, members: [...g.members] };
        });
        await steps.run('copy', async () => {
          if (g.stores.length === 0) return { stores: [] };
          for (const id of [...partIds, imageId])
            await copyToStores(client, id, g.stores, { signal });
          return { stores: [...g.stores] };
        });
        return {
          imageId,
          snapshotIds: partIds,
          existing: false,
          parentSnapshotId: null,
          blocksSent: 0,
          blocksSkipped: 0,
          bytesSent: Number(uploaded.bytes ?? 0),
        };
      } finally {
        client.close();
      }
    },

    async cleanUp(ctx: MethodContext): Promise<string[]> {
      const removed: string[] = [];
      if (ctx.steps.done('find')?.existing === true) return removed;
      const cp = await ctx.steps.checkpoint<UploadCheckpoint>('upload').load();
      if (cp === undefined) return removed;
      const placement = glancePlacement(ctx.placement);
      const client = clientFor(options, await placement.session());
      try {
        // The AMI first, then what it names.
        const ids = [cp.done.root, cp.current?.id, cp.done.ramdisk, cp.done.kernel];
        for (const id of ids) {
          if (id === undefined || removed.includes(id)) continue;
          try {
            if (await client.deleteImage(id)) removed.push(id);
          } catch {
            // best effort: the next `ferry prune` or a re-run finds it by its properties
          }
        }
        return removed;
      } finally {
        client.close();
      }
    },
  };
}

/** The prepare and upload steps: the parts made, then each created and sent (resumed from the checkpoint). */
async function prepareAndUpload(
  ctx: MethodContext,
  client: GlanceClient,
  options: GlanceRunnerOptions,
): Promise<StepResult> {
  const { steps, signal, image, request } = ctx;
  const placement = glancePlacement(ctx.placement);
  const g = placement.glance;
  const revision = revisionOf(ctx);
  const contentHash = image.source.contentHash;
  const prepared = await prepareParts(image, g, ctx.state.renders, signal);
  try {
    await steps.run('prepare', async () => ({
      parts: prepared.parts.map((p) => ({
        role: p.role,
        diskFormat: p.diskFormat,
        bytes: p.size,
      })),
    }));
    const name = imageName(request.stream, revision);
    const common: Record<string, string> = {
      ...g.properties,
      ...(image.facts.openstack ?? inspectProperties(image.report)),
      [GLANCE_PROPERTY.stream]: request.stream,
      [GLANCE_PROPERTY.target]: placement.target,
      [GLANCE_PROPERTY.revision]: revision,
      [GLANCE_PROPERTY.contentHash]: contentHash,
      [GLANCE_PROPERTY.version]: options.version,
      [GLANCE_PROPERTY.run]: ctx.runId,
    };
    return await steps.run('upload', async () => {
      const journal = steps.checkpoint<UploadCheckpoint>('upload');
      let cp: UploadCheckpoint = (await journal.load()) ?? { attempt: 1, done: {} };
      let bytes = 0;
      for (const part of prepared.parts) {
        if (cp.done[part.role] !== undefined) continue;
        const id = await uploadPart(client, ctx, part, {
          name: `${name}${PART_SUFFIX[part.role]}`,
          properties: {
            ...common,
            [GLANCE_PROPERTY.role]: part.role,
            ...(part.role === 'root' && cp.done.kernel !== undefined
              ? { kernel_id: cp.done.kernel }
              : {}),
            ...(part.role === 'root' && cp.done.ramdisk !== undefined
              ? { ramdisk_id: cp.done.ramdisk }
              : {}),
          },
          tags: g.tags,
          checkpoint: cp,
          save: async (next) => {
            cp = next;
            await journal.save(next);
          },
          retries: options.uploadRetries ?? 2,
        });
        cp = { attempt: cp.attempt, done: { ...cp.done, [part.role]: id } };
        await journal.save(cp);
        bytes += part.size;
      }
      return {
        imageId: cp.done.root!,
        partIds: [cp.done.ramdisk, cp.done.kernel].filter((x): x is string => x !== undefined),
        bytes,
      };
    });
  } finally {
    await prepared.release();
  }
}

async function addMember(
  client: GlanceClient,
  id: string,
  member: string,
  signal: AbortSignal,
): Promise<void> {
  const members = await client.listMembers(id, { signal });
  if (members.some((m) => m.member_id === member)) return;
  await client.addMember(id, member, { signal });
}

/**
 * Creates the part's image (under an id the checkpoint fixes) and uploads its
 * data; an image an earlier attempt left is reused when it is still queued,
 * kept when it is active with the same data, and deleted otherwise (its id
 * is then spent, so the attempt is bumped). Returns the active image's id.
 */
async function uploadPart(
  client: GlanceClient,
  ctx: MethodContext,
  part: GlancePart,
  o: {
    readonly name: string;
    readonly properties: Readonly<Record<string, string>>;
    readonly tags: readonly string[];
    readonly checkpoint: UploadCheckpoint;
    readonly save: (cp: UploadCheckpoint) => Promise<void>;
    readonly retries: number;
  },
): Promise<string> {
  const { signal } = ctx;
  const g = glancePlacement(ctx.placement).glance;
  let cp = o.checkpoint;
  let existing: GlanceImage | null = null;
  if (cp.current?.role === part.role) {
    existing = await client.getImage(cp.current.id, { signal });
    if (existing !== null && existing.status === 'active') {
      const local = await fileSha512(part.path, signal);
      if (existing.os_hash_value === local && existing.size === part.size) return existing.id;
    }
    if (existing !== null && existing.status !== 'queued') {
      await client.deleteImage(existing.id, { signal });
      existing = null;
    }
    if (existing === null) {
      cp = { ...cp, attempt: cp.attempt + 1 };
      delete (cp as { current?: unknown }).current;
    }
  }
  const id =
    existing?.id ??
    partId(ctx.runId, ctx.placement.key, ctx.image.source.contentHash, part.role, cp.attempt);
  if (existing === null) {
    await o.save({ ...cp, current: { role: part.role, id } });
    await client.createImage(
      {
        id,
        name: o.name,
        disk_format: part.diskFormat,
        container_format: part.containerFormat,
        visibility: 'private',
        tags: o.tags,
        properties: o.properties,
      },
      { signal },
    );
  }
  ctx.emit({
    type: 'step',
    placement: ctx.placement.key,
    step: 'upload',
    state: 'started',
    detail: `${part.role} ${id} (${part.diskFormat}, ${part.size} bytes)`,
  });
  // web-download: Glance fetches the file from a server of ferry's, for this upload only.
  const served =
    g.method === 'web-download'
      ? await serveFile(part.path, {
          listen: g.webDownload?.listen ?? { host: '127.0.0.1', port: 0 },
          ...(g.webDownload?.baseUrl === undefined ? {} : { baseUrl: g.webDownload.baseUrl }),
        })
      : undefined;
  const method =
    served === undefined
      ? (g.method as Exclude<typeof g.method, 'web-download'>)
      : ({ method: 'web-download', uri: served.url } as const);
  let result: Awaited<ReturnType<typeof uploadImageData>>;
  try {
    result = await uploadImageData(client, id, {
      open: () => createReadStream(part.path, { highWaterMark: 1 << 20 }),
      size: part.size,
      method,
      ...(served === undefined ? {} : { sha512: await fileSha512(part.path, signal) }),
      retries: o.retries,
      signal,
      // In 512 KiB units, as the other methods count their progress.
      onProgress: (p) =>
        ctx.emit({
          type: 'blocks',
          placement: ctx.placement.key,
          sent: Math.floor(p.sent / BLOCK_SIZE),
          skipped: 0,
          total: Math.ceil(p.total / BLOCK_SIZE),
          bytes: p.sent,
        }),
    });
  } finally {
    await served?.close();
  }
  if (result.image.status !== 'active')
    throw new FerryError(
      'FERRY_GLANCE_UPLOAD_FAILED',
      `Cannot upload ${part.role} image ${id}: it is ${result.image.status}, not active`,
    );
  return id;
}
