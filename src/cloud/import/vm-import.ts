/**
 * VM Import's tasks: created by ImportImage and ImportSnapshot, run in the
 * background a few at a time, every state change written to the state store
 * before the next step starts. After a restart (or kill -9) each task that
 * was not finished either resumes or is cleaned up; none stays active with
 * nobody working on it.
 */
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { DiskImage } from '../../disk/index.js';
import { FerryError } from '../../errors/index.js';
import { AwsError } from '../aws-error.js';
import { type EbsEngine, isEbsError } from '../ebs/index.js';
import type { TaggableKind } from '../ec2/tags.js';
import { isRegion } from '../regions.js';
import type { StateStore } from '../state-store.js';
import { bootSnapshot, bootUnavailable } from './boot-check.js';
import { writeSnapshot } from './convert-to-snapshot.js';
import type { ImportContext, ImportDependencies } from './dependencies.js';
import { firstBootFailure, ImportFailure, NO_ACCESS, SERVER_ERROR } from './import-failure.js';
import type { ImportRequest } from './params.js';
import {
  convertRange,
  IMAGE_PROGRESS,
  IMAGE_STEPS,
  type ImportStep,
  SNAPSHOT_PROGRESS,
} from './states.js';
import { newTaskId } from './task-id.js';
import {
  emptyDocument,
  IMPORT_SERVICE,
  type ImportDocument,
  type ImportKind,
  type ImportTaskRecord,
  isFinal,
  type TimelineEntry,
} from './task-record.js';
import { conversionFailure, validateDisk } from './validate-disk.js';

/** AWS's default quota of import tasks in progress per account and region. */
export const MAX_ACTIVE_TASKS = 20;
/** Finished tasks stay visible this long (then DescribeImport*Tasks forgets them). */
export const FINISHED_RETENTION_MS = 7 * 24 * 3600_000;
/** Records kept per account and region at most (the oldest finished go first). */
export const MAX_RECORDS = 1000;
/** Restarts a task may resume from; at the next it fails (no task loops on a crash forever). */
export const MAX_RESUMES = 5;
const RESUMED = 'resumed after a restart of the endpoint';

export interface VmImportOptions extends ImportDependencies {
  readonly state: StateStore;
  readonly engine: EbsEngine;
  /** A directory of the data directory for boot disks; wiped on open. */
  readonly workDir: string;
  readonly now?: () => number;
  readonly log?: (line: string) => void;
}

interface Running {
  readonly controller: AbortController;
  readonly done: Promise<void>;
}

/** Thrown inside a step when the task stopped being active under it (cancelled). */
class TaskStopped extends Error {}

export class VmImport {
  private readonly options: VmImportOptions;
  private readonly now: () => number;
  private readonly queue: Array<{ ctx: ImportContext; id: string }> = [];
  private readonly running = new Map<string, Running>();
  private closing = false;

  private constructor(options: VmImportOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
  }

  /** Opens the tasks of the data directory: unfinished ones resume or are cleaned up. */
  static async open(options: VmImportOptions): Promise<VmImport> {
    const vm = new VmImport(options);
    await rm(options.workDir, { recursive: true, force: true });
    const resumed: Array<{ ctx: ImportContext; task: ImportTaskRecord }> = [];
    for (const ctx of await vm.contexts()) {
      const doc = await options.state.read(ctx.account, ctx.region, IMPORT_SERVICE, emptyDocument);
      for (const task of Object.values(doc.tasks)) if (!isFinal(task)) resumed.push({ ctx, task });
    }
    resumed.sort((a, b) => a.task.created - b.task.created);
    for (const { ctx, task } of resumed) {
      if (task.status === 'deleting') {
        vm.queue.push({ ctx, id: task.id });
        continue;
      }
      await vm.update(ctx, task.id, (t) => {
        const resumes = t.timeline.filter((e) => e.note === RESUMED).length;
        if (resumes >= MAX_RESUMES) {
          // Interrupted this often, the task would only be interrupted again: it ends.
          t.status = 'deleting';
          t.statusMessage = SERVER_ERROR;
          t.progress = null;
          vm.push(t, {
            status: 'deleting',
            message: SERVER_ERROR,
            progress: null,
            note: `stopped by ${MAX_RESUMES} restarts`,
          });
          return;
        }
        vm.push(t, {
          status: 'active',
          message: t.statusMessage,
          progress: t.progress,
          note: RESUMED,
        });
      });
      vm.queue.push({ ctx, id: task.id });
    }
    vm.pump();
    return vm;
  }

  /** The accounts and regions that have import state (DATA/state/ACCOUNT/REGION/vm-import.json). */
  private async contexts(): Promise<ImportContext[]> {
    const out: ImportContext[] = [];
    const root = this.options.state.root;
    const accounts = await readdir(root).catch(() => [] as string[]);
    for (const account of accounts) {
      if (!/^\d{12}$/.test(account)) continue;
      const regions = await readdir(join(root, account)).catch(() => [] as string[]);
      for (const region of regions) {
        if (!isRegion(region)) continue;
        const files = await readdir(join(root, account, region)).catch(() => [] as string[]);
        if (files.includes(`${IMPORT_SERVICE}.json`)) out.push({ account, region });
      }
    }
    return out;
  }

  // ---- records --------------------------------------------------------------

  async tasks(ctx: ImportContext, kind: ImportKind): Promise<ImportTaskRecord[]> {
    const doc = await this.options.state.read(
      ctx.account,
      ctx.region,
      IMPORT_SERVICE,
      emptyDocument,
    );
    const horizon = this.now() - FINISHED_RETENTION_MS;
    return Object.values(doc.tasks)
      .filter((t) => t.kind === kind && !(isFinal(t) && lastTime(t) < horizon))
      .sort((a, b) => a.created - b.created || (a.id < b.id ? -1 : 1));
  }

  /** The tag registry's view of import tasks of one kind (import-ami- or import-snap- ids). */
  taggable(kind: ImportKind): TaggableKind {
    const missing = (id: string) =>
      new AwsError(400, 'InvalidConversionTaskId', `The import task ID '${id}' does not exist.`);
    const visible = async (ctx: ImportContext, id: string) =>
      (await this.tasks(ctx, kind)).some((t) => t.id === id);
    return {
      resourceType: kind === 'image' ? 'import-image-task' : 'import-snapshot-task',
      prefix: kind === 'image' ? 'import-ami-' : 'import-snap-',
      notFound: missing,
      exists: visible,
      updateTags: async (ctx, id, change) => {
        if (!(await visible(ctx, id))) throw missing(id);
        await this.update(ctx, id, (task) => {
          const next = change(task.tags).map((t) => ({ key: t.key, value: t.value }));
          task.tags.splice(0, task.tags.length, ...next);
        });
      },
      list: async (ctx) => (await this.tasks(ctx, kind)).map((t) => ({ id: t.id, tags: t.tags })),
    };
  }

  private async task(ctx: ImportContext, id: string): Promise<ImportTaskRecord | undefined> {
    const doc = await this.options.state.read(
      ctx.account,
      ctx.region,
      IMPORT_SERVICE,
      emptyDocument,
    );
    return Object.hasOwn(doc.tasks, id) ? structuredClone(doc.tasks[id]) : undefined;
  }

  private update<R>(
    ctx: ImportContext,
    id: string,
    change: (task: ImportTaskRecord) => R,
  ): Promise<R> {
    return this.options.state.update<ImportDocument, R>(
      ctx.account,
      ctx.region,
      IMPORT_SERVICE,
      emptyDocument,
      (doc) => {
        const task = Object.hasOwn(doc.tasks, id) ? doc.tasks[id] : undefined;
        if (task === undefined)
          throw new FerryError('FERRY_INTERNAL', `The import task ${id} has no record`);
        return change(task);
      },
    );
  }

  private push(task: ImportTaskRecord, entry: Omit<TimelineEntry, 'time'>): void {
    task.timeline.push({ ...entry, time: this.now() });
  }

  /** Creates a task (or returns the one its ClientToken made) and queues it. */
  async create(ctx: ImportContext, request: ImportRequest): Promise<ImportTaskRecord> {
    const progress = request.kind === 'image' ? IMAGE_PROGRESS.pending : SNAPSHOT_PROGRESS.pending;
    const created = await this.options.state.update<ImportDocument, ImportTaskRecord>(
      ctx.account,
      ctx.region,
      IMPORT_SERVICE,
      emptyDocument,
      (doc) => {
        if (request.clientToken !== null) {
          const same = Object.values(doc.tasks).find(
            (t) => t.clientToken === request.clientToken && t.kind === request.kind,
          );
          if (same !== undefined) {
            if (same.fingerprint !== request.fingerprint)
              throw new AwsError(
                400,
                'IdempotentParameterMismatch',
                `The client token ${request.clientToken} was used with other parameters.`,
              );
            return structuredClone(same);
          }
        }
        const active = Object.values(doc.tasks).filter((t) => !isFinal(t)).length;
        if (active >= MAX_ACTIVE_TASKS)
          throw new AwsError(
            400,
            'ResourceLimitExceeded',
            `You have reached the limit of ${MAX_ACTIVE_TASKS} active import tasks in this Region.`,
          );
        prune(doc, this.now());
        const now = this.now();
        const task: ImportTaskRecord = {
          id: newTaskId(request.kind),
          kind: request.kind,
          created: now,
          status: 'active',
          statusMessage: 'pending',
          progress,
          step: 'pending',
          timeline: [{ status: 'active', message: 'pending', progress, time: now }],
          disk: request.disk,
          description: request.description,
          architecture: request.architecture,
          bootMode: request.bootMode,
          platform: request.platform,
          licenseType: request.licenseType,
          hypervisor: request.hypervisor,
          encrypted: request.encrypted,
          kmsKeyId: request.kmsKeyId,
          clientToken: request.clientToken,
          fingerprint: request.fingerprint,
          tags: request.tags,
          detectedFormat: null,
          diskImageSize: null,
          detected: null,
          snapshotId: null,
          snapshotComplete: false,
          volumeSize: null,
          imageId: null,
          cancelReason: null,
        };
        doc.tasks[task.id] = task;
        return structuredClone(task);
      },
    );
    if (
      !this.running.has(created.id) &&
      !this.queue.some((q) => q.id === created.id) &&
      !isFinal(created)
    ) {
      this.queue.push({ ctx, id: created.id });
      this.pump();
    }
    return created;
  }

  /**
   * CancelImportTask: an active task goes to deleting at once; its work
   * stops, its partial snapshot is removed, and it ends deleted.
   */
  async cancel(
    ctx: ImportContext,
    id: string,
    reason: string | null,
  ): Promise<{ previous: string; state: string }> {
    const previous = await this.update(ctx, id, (t) => {
      if (t.status !== 'active')
        throw new AwsError(
          400,
          'IncorrectState',
          `The import task ${id} is ${t.status} and cannot be cancelled.`,
        );
      t.status = 'deleting';
      t.statusMessage = reason ?? 'The import task was cancelled.';
      t.cancelReason = reason ?? 'The import task was cancelled.';
      t.progress = null;
      this.push(t, {
        status: 'deleting',
        message: t.statusMessage,
        progress: null,
        note: 'CancelImportTask',
      });
      return 'active';
    });
    const run = this.running.get(id);
    if (run !== undefined) run.controller.abort();
    else {
      // A queued task has no worker yet: take it out of the queue and clean up now.
      const at = this.queue.findIndex((q) => q.id === id);
      if (at >= 0) this.queue.splice(at, 1);
      this.track(id, this.cleanUp(ctx, id));
    }
    return { previous, state: 'deleting' };
  }

  /** Stops the work (tasks stay as recorded, to resume at the next open). */
  async close(): Promise<void> {
    this.closing = true;
    this.queue.length = 0;
    for (const r of this.running.values()) r.controller.abort();
    await Promise.all([...this.running.values()].map((r) => r.done));
  }

  // ---- the worker -----------------------------------------------------------

  /** Runs `work` as the task's worker (close() waits for it). */
  private track(id: string, work: Promise<void>): void {
    const controller = new AbortController();
    const done = work
      .catch((error: unknown) => {
        this.options.log?.(`vm-import ${id}: ${(error as Error).message}`);
      })
      .finally(() => {
        this.running.delete(id);
        this.pump();
      });
    this.running.set(id, { controller, done });
  }

  private pump(): void {
    const cap = Math.max(1, this.options.concurrency ?? 2);
    while (!this.closing && this.running.size < cap && this.queue.length > 0) {
      const { ctx, id } = this.queue.shift()!;
      if (this.running.has(id)) continue;
      const controller = new AbortController();
      const done = this.run(ctx, id, controller.signal)
        .catch((error: unknown) => {
          this.options.log?.(`vm-import ${id}: ${(error as Error).message}`);
        })
        .finally(() => {
          this.running.delete(id);
          this.pump();
        });
      this.running.set(id, { controller, done });
    }
  }

  private async checkpoint(id: string, point: string, signal: AbortSignal): Promise<void> {
    if (this.options.checkpoint !== undefined)
      await untilAborted(this.options.checkpoint(id, point), signal);
  }

  /** Moves an active task to `step` (TaskStopped if it is no longer active). */
  private async enter(
    ctx: ImportContext,
    id: string,
    step: ImportStep | 'completed',
    note?: string,
  ): Promise<void> {
    await this.update(ctx, id, (t) => {
      if (t.status !== 'active') throw new TaskStopped();
      if (step === 'completed') {
        t.status = 'completed';
        t.statusMessage = null;
        t.progress = null;
        t.step = 'completed';
        this.push(t, { status: 'completed', message: null, progress: null });
        return;
      }
      const progress =
        t.kind === 'image'
          ? IMAGE_PROGRESS[step as keyof typeof IMAGE_PROGRESS]
          : SNAPSHOT_PROGRESS[step as keyof typeof SNAPSHOT_PROGRESS];
      t.step = step;
      t.statusMessage = step;
      t.progress = progress;
      this.push(t, {
        status: 'active',
        message: step,
        progress,
        ...(note === undefined ? {} : { note }),
      });
    });
  }

  private async run(ctx: ImportContext, id: string, signal: AbortSignal): Promise<void> {
    const task = await this.task(ctx, id);
    if (task === undefined || isFinal(task)) return;
    if (task.status === 'deleting') {
      await this.cleanUp(ctx, id);
      return;
    }
    try {
      await this.work(ctx, task, signal);
    } catch (error) {
      if (this.closing) return; // left as recorded; the next open resumes it
      const now = await this.task(ctx, id);
      if (now === undefined) return;
      if (now.status === 'active') {
        const message =
          error instanceof ImportFailure
            ? error.message
            : isEbsError(error)
              ? `ServerError: ${error.message}`
              : SERVER_ERROR;
        if (!(error instanceof ImportFailure))
          this.options.log?.(`vm-import ${id}: ${(error as Error).stack ?? String(error)}`);
        await this.update(ctx, id, (t) => {
          t.status = 'deleting';
          t.statusMessage = message;
          t.progress = null;
          this.push(t, { status: 'deleting', message, progress: null });
        });
      }
      await this.cleanUp(ctx, id);
    }
  }

  /** deleting → deleted: removes the snapshot the task made (unless an AMI uses it). */
  private async cleanUp(ctx: ImportContext, id: string): Promise<void> {
    const task = await this.task(ctx, id);
    if (task === undefined || task.status !== 'deleting') return;
    if (task.snapshotId !== null && task.imageId === null) {
      try {
        await this.options.engine.deleteSnapshot(ctx, task.snapshotId);
      } catch (error) {
        // In use (an image registered from it elsewhere): it stays, and the task still ends.
        if (isEbsError(error, 'ConflictException'))
          this.options.log?.(`vm-import ${id}: snapshot ${task.snapshotId} kept: ${error.message}`);
        else if (!isEbsError(error, 'ResourceNotFoundException')) throw error;
      }
    }
    await this.update(ctx, id, (t) => {
      t.status = 'deleted';
      t.step = 'deleted';
      if (t.imageId === null) {
        t.snapshotId = null;
        t.snapshotComplete = false;
      }
      this.push(t, { status: 'deleted', message: t.statusMessage, progress: null });
    });
  }

  private async work(
    ctx: ImportContext,
    start: ImportTaskRecord,
    signal: AbortSignal,
  ): Promise<void> {
    const id = start.id;
    let task = start;
    if (!task.snapshotComplete) {
      if (task.snapshotId !== null) {
        // A restart interrupted the conversion: its blocks are not trusted; start over.
        const partial = task.snapshotId;
        await this.options.engine.deleteSnapshot(ctx, partial).catch((error: unknown) => {
          if (!isEbsError(error, 'ResourceNotFoundException')) throw error;
        });
        await this.update(ctx, id, (t) => {
          t.snapshotId = null;
          t.volumeSize = null;
        });
      }
      await this.enter(ctx, id, 'validating');
      await this.checkpoint(id, 'validating', signal);
      const object = await untilAborted(
        this.options.objectFile(ctx.account, task.disk.bucket, task.disk.key),
        signal,
      );
      if (object === undefined) throw new ImportFailure(NO_ACCESS);
      let image: DiskImage;
      try {
        const v = await validateDisk(object, task.disk.format, task.kind, signal);
        image = v.image;
        const report = v.report;
        await this.update(ctx, id, (t) => {
          t.detectedFormat = v.format;
          t.diskImageSize = object.size;
          if (report !== null) {
            const arch = report.os?.arch ?? report.kernels.find((k) => k.default)?.arch ?? null;
            const firmware = report.bootloader.firmware;
            t.detected = {
              architecture: arch,
              platform:
                report.os === null ? null : report.os.type === 'windows' ? 'Windows' : 'Linux',
              bootMode: firmware.includes('bios')
                ? 'legacy-bios'
                : firmware.includes('uefi')
                  ? 'uefi'
                  : null,
            };
          }
        });
      } catch (error) {
        if (error instanceof FerryError && error.code === 'FERRY_IO')
          throw new ImportFailure(NO_ACCESS);
        throw error;
      }
      try {
        await this.enter(ctx, id, 'validated');
        await this.convert(ctx, id, image, signal);
      } finally {
        await image.close();
      }
      task = (await this.task(ctx, id))!;
    }
    if (task.kind === 'snapshot') {
      await this.enter(ctx, id, 'completed');
      return;
    }
    const at = IMAGE_STEPS.indexOf(task.step as (typeof IMAGE_STEPS)[number]);
    if (at < IMAGE_STEPS.indexOf('booted')) {
      if (at < IMAGE_STEPS.indexOf('updated')) await this.enter(ctx, id, 'updated');
      await this.enter(ctx, id, 'preparing to boot');
      await this.boot(ctx, id, signal);
    }
    await this.enter(ctx, id, 'preparing ami');
    await this.checkpoint(id, 'preparing ami', signal);
    task = (await this.task(ctx, id))!;
    if (task.imageId === null) {
      const detected = task.detected;
      const bootMode = (task.bootMode ?? detected?.bootMode ?? undefined) as
        | 'legacy-bios'
        | 'uefi'
        | undefined;
      const description = task.description ?? undefined;
      // Not raced with the abort: an AMI the registry makes must be recorded, so
      // a cancel that came meanwhile leaves its snapshot alone.
      const { imageId } = await this.options.registerImage(ctx, {
        name: id,
        ...(description === undefined ? {} : { description }),
        architecture: task.architecture ?? detected?.architecture ?? 'x86_64',
        ...(bootMode === undefined ? {} : { bootMode }),
        rootDeviceName: '/dev/sda1',
        snapshotId: task.snapshotId!,
        volumeSize: task.volumeSize!,
        clientToken: id,
      });
      const status = await this.update(ctx, id, (t) => {
        t.imageId = imageId;
        return t.status;
      });
      if (status !== 'active') throw new TaskStopped();
    }
    await this.enter(ctx, id, 'completed');
  }

  private async convert(
    ctx: ImportContext,
    id: string,
    image: DiskImage,
    signal: AbortSignal,
  ): Promise<void> {
    const task = (await this.task(ctx, id))!;
    const [from, to] = convertRange(task.kind);
    await this.enter(ctx, id, task.kind === 'image' ? 'converting' : 'downloading/converting');
    let shown = from;
    const writing = writeSnapshot(
      this.options.engine,
      ctx,
      image,
      {
        description: `Created by AWS-VMImport service for ${id}`,
        encrypted: task.encrypted,
        kmsKeyArn: task.kmsKeyId,
        clientToken: `${id}-${task.timeline.length}`,
      },
      {
        started: async (snapshotId, volumeSize) => {
          await this.update(ctx, id, (t) => {
            t.snapshotId = snapshotId;
            t.volumeSize = volumeSize;
          });
          await this.checkpoint(id, 'snapshot-started', signal);
        },
        progress: async ({ done, total }) => {
          const p = total === 0 ? to : Math.floor(from + ((to - from) * done) / total);
          // One state write per percent, not per block.
          if (p <= shown) return;
          shown = p;
          await this.update(ctx, id, (t) => {
            if (t.status !== 'active') throw new TaskStopped();
            t.progress = p;
          });
        },
      },
      signal,
    );
    let written: Awaited<typeof writing>;
    try {
      written = await writing;
    } catch (error) {
      throw conversionFailure(error, task.detectedFormat ?? 'raw') ?? error;
    }
    if (task.kind === 'image') await this.enter(ctx, id, 'updating');
    // CompleteSnapshot checks the block count and the LINEAR checksum of what went in.
    await this.options.engine.completeSnapshot(ctx, {
      snapshotId: written.snapshotId,
      changedBlocksCount: written.changedBlocks,
      checksum: written.checksum,
      checksumAlgorithm: 'SHA256',
      checksumAggregationMethod: 'LINEAR',
    });
    await this.update(ctx, id, (t) => {
      t.snapshotComplete = true;
    });
  }

  private async boot(ctx: ImportContext, id: string, signal: AbortSignal): Promise<void> {
    const task = (await this.task(ctx, id))!;
    const bootMode = task.bootMode ?? task.detected?.bootMode ?? 'legacy-bios';
    const firmware = bootMode === 'uefi' ? 'uefi' : 'bios';
    const scratch = join(this.options.workDir, id);
    await rm(scratch, { recursive: true, force: true });
    await mkdir(scratch, { recursive: true, mode: 0o700 });
    const options = this.options.boot ?? {};
    const skip = bootUnavailable(options, firmware);
    if (skip !== null) {
      await this.enter(ctx, id, 'booting', `boot skipped: ${skip}`);
      await this.update(ctx, id, (t) => {
        t.statusMessage = `booting (skipped: ${skip})`;
      });
      await this.enter(ctx, id, 'booted', `boot skipped: ${skip}`);
      return;
    }
    await this.enter(
      ctx,
      id,
      'booting',
      `QEMU (TCG) with ${firmware === 'uefi' ? 'OVMF' : 'SeaBIOS'}`,
    );
    try {
      const outcome = await bootSnapshot(
        this.options.engine,
        ctx,
        { id: task.snapshotId!, volumeSize: task.volumeSize! },
        firmware,
        options,
        scratch,
        signal,
      );
      if (outcome.result === 'skipped') {
        await this.enter(ctx, id, 'booted', `boot skipped: ${outcome.reason}`);
        return;
      }
      if (outcome.result !== 'booted') {
        const platform = task.platform ?? task.detected?.platform ?? null;
        this.options.log?.(
          `vm-import ${id}: the guest did not reach userspace (${outcome.result}); console tail: ${outcome.console.slice(-500)}`,
        );
        throw new ImportFailure(firstBootFailure(platform));
      }
      await this.enter(ctx, id, 'booted');
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }
}

/** Waits for `work`, or rejects as soon as `signal` aborts (work that takes no signal). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new TaskStopped());
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new TaskStopped());
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

function lastTime(task: ImportTaskRecord): number {
  return task.timeline[task.timeline.length - 1]?.time ?? task.created;
}

/** Forgets finished tasks past their retention, and the oldest finished beyond the cap. */
function prune(doc: ImportDocument, now: number): void {
  const finished = Object.values(doc.tasks)
    .filter(isFinal)
    .sort((a, b) => lastTime(a) - lastTime(b));
  let count = Object.keys(doc.tasks).length;
  for (const t of finished) {
    if (lastTime(t) < now - FINISHED_RETENTION_MS || count >= MAX_RECORDS) {
      delete doc.tasks[t.id];
      count--;
    }
  }
}
