/**
 * The instances of the local cloud and their lifecycle. Records live in the
 * StateStore (ACCOUNT/REGION/instances.json); each instance's node-side
 * files (its qcow2 overlay, its UEFI variables, its console) live under
 * DATA/instances/ACCOUNT/REGION/ID/, and root snapshots are materialized
 * once in the image cache (DATA/cache/).
 *
 * States walk as EC2's do: pending → running once QEMU answers; stopping →
 * stopped (ACPI power button, then QMP quit and SIGKILL after a timeout);
 * shutting-down → terminated (overlay removed; the record stays visible for
 * an hour). A guest that powers itself off goes to stopped (or terminated,
 * with InstanceInitiatedShutdownBehavior=terminate). Without QEMU the walk
 * is the same but nothing boots, and the state reason and console say so.
 *
 * The API answers at once and the slow work (download, boot, shutdown)
 * runs in the background, one task at a time per instance. After a restart
 * of the endpoint, instances that were pending or running are booted again
 * (any QEMU left from a killed endpoint is killed first); stopping ones are
 * stopped and shutting-down ones finish terminating.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AwsError } from '../aws-error.js';
import type { TaggableKind } from '../ec2/tags.js';
import { isRegion } from '../regions.js';
import type { StateStore } from '../state-store.js';
import { ConsoleLog } from './console-log.js';
import { detectHostTools, type HostTools } from './host-tools.js';
import { checkImageId, checkInstanceId, isSnapshotId, newId } from './ids.js';
import { type BlockReader, type CacheEngine, CacheError, ImageCache } from './image-cache.js';
import {
  type BootMode,
  emptyInstances,
  type InstanceContext,
  type InstanceRecord,
  type InstanceStateName,
  type InstancesDocument,
  type InstanceTag,
  type StateReason,
} from './instance-record.js';
import { instanceType } from './instance-types.js';
import { QemuVm, type VmExit } from './qemu-vm.js';

const run = promisify(execFile);

/** What RunInstances needs to know of an image; the image registry provides it. */
export interface ImageForLaunch {
  readonly imageId: string;
  readonly ownerId: string;
  readonly architecture: string;
  readonly bootMode?: 'legacy-bios' | 'uefi' | 'uefi-preference';
  readonly rootDeviceName: string;
  readonly blockDeviceMappings: ReadonlyArray<{
    readonly deviceName: string;
    readonly snapshotId?: string;
    readonly volumeSize?: number;
  }>;
}

/** Resolves an AMI the caller may launch, or throws an AwsError (InvalidAMIID.NotFound…). */
export type ImageForLaunchFn = (
  caller: InstanceContext,
  imageId: string,
) => Promise<ImageForLaunch>;

export interface InstancesOptions {
  /** The image registry's view for launches (default: no images, InvalidAMIID.NotFound). */
  readonly imageForLaunch?: ImageForLaunchFn;
  /** Download attempts of a root snapshot into the cache: 1 to 98, default 3. */
  readonly downloadAttempts?: number;
  /** Pause before retry n: n times this (default 1000 ms). */
  readonly downloadRetryDelayMs?: number;
  /** Cap on the image cache's allocated bytes (default 32 GiB). */
  readonly cacheMaxBytes?: number;
  /** How long a guest has to power off after the ACPI power button (default 30 s). */
  readonly stopTimeoutMs?: number;
  /** How long terminated instances stay listed (default one hour, as EC2). */
  readonly terminatedVisibleMs?: number;
  /** Instances not terminated per account and region (default 20). */
  readonly maxInstances?: number;
  /** qemu-system-x86_64 to use; null: never boot (default: from PATH). */
  readonly qemu?: string | null;
  /** Use KVM (default: when /dev/kvm opens read-write). */
  readonly kvm?: boolean;
  /** How the cache reads snapshot blocks (default: the EBS engine's readBlock). */
  readonly readBlock?: BlockReader;
}

export interface InstancesDeps {
  readonly dataDir: string;
  readonly state: StateStore;
  readonly engine: CacheEngine;
  readonly now: () => number;
}

export interface RunRequest {
  readonly imageId: string;
  readonly instanceType: string;
  readonly minCount: number;
  readonly maxCount: number;
  readonly clientToken: string | null;
  readonly tags: readonly InstanceTag[];
  readonly userData: string | null;
  readonly shutdownBehavior: 'stop' | 'terminate';
}

export interface StateChange {
  readonly instanceId: string;
  readonly previous: InstanceStateName;
  readonly current: InstanceStateName;
}

const SERVICE = 'instances';
const MAX_VOLUME_GIB = 16384;
/** Records kept per account and region, terminated ones dropped oldest first beyond it. */
const MAX_RECORDS = 1000;

const REASONS = {
  user: {
    code: 'Client.UserInitiatedShutdown',
    message: 'Client.UserInitiatedShutdown: User initiated shutdown',
  },
  guest: {
    code: 'Client.InstanceInitiatedShutdown',
    message: 'Client.InstanceInitiatedShutdown: Instance initiated shutdown',
  },
  noQemu: {
    code: 'Server.QemuNotInstalled',
    message:
      'Server.QemuNotInstalled: qemu-system-x86_64 (and qemu-img) are not installed on this host; the instance is recorded but does not boot',
  },
} as const satisfies Record<string, StateReason>;

function internal(message: string): StateReason {
  return {
    code: 'Server.InternalError',
    message: `Server.InternalError: ${message}`.slice(0, 1000),
  };
}

interface Live {
  vm: QemuVm | undefined;
  console: ConsoleLog | undefined;
  queue: Promise<void>;
}

type Key = string;
const keyOf = (ctx: InstanceContext, id: string): Key => `${ctx.account}/${ctx.region}/${id}`;

function gmt(ms: number): string {
  return `${new Date(ms).toISOString().replace('T', ' ').slice(0, 19)} GMT`;
}

export class Instances {
  private readonly live = new Map<Key, Live>();
  private readonly tasks = new Set<Promise<void>>();
  private closing = false;
  private readonly imageForLaunch: ImageForLaunchFn;
  private readonly stopTimeoutMs: number;
  private readonly visibleMs: number;
  private readonly maxInstances: number;

  private constructor(
    private readonly deps: InstancesDeps,
    readonly tools: HostTools,
    readonly cache: ImageCache,
    options: InstancesOptions,
  ) {
    this.imageForLaunch =
      options.imageForLaunch ??
      (async (_caller, imageId) => {
        throw new AwsError(
          400,
          'InvalidAMIID.NotFound',
          `The image id '[${imageId}]' does not exist`,
        );
      });
    this.stopTimeoutMs = options.stopTimeoutMs ?? 30_000;
    this.visibleMs = options.terminatedVisibleMs ?? 3_600_000;
    this.maxInstances = options.maxInstances ?? 20;
  }

  static async open(deps: InstancesDeps, options: InstancesOptions = {}): Promise<Instances> {
    const attempts = options.downloadAttempts ?? 3;
    if (!Number.isInteger(attempts) || attempts < 1 || attempts > 98)
      throw new RangeError(`downloadAttempts must be 1 to 98, not ${attempts}`);
    const tools = await detectHostTools(join(deps.dataDir, 'instances'), {
      ...(options.qemu === undefined ? {} : { qemu: options.qemu }),
      ...(options.kvm === undefined ? {} : { kvm: options.kvm }),
    });
    const cache = await ImageCache.open({
      root: join(deps.dataDir, 'cache'),
      engine: deps.engine,
      ...(options.readBlock === undefined ? {} : { readBlock: options.readBlock }),
      maxBytes: options.cacheMaxBytes ?? 32 * 1024 ** 3,
      downloadAttempts: attempts,
      retryDelayMs: options.downloadRetryDelayMs ?? 1000,
      now: deps.now,
    });
    const instances = new Instances(deps, tools, cache, options);
    await instances.recover();
    return instances;
  }

  // ---- API ----------------------------------------------------------------

  /** RunInstances: records the instances as pending and starts booting them. */
  async run(ctx: InstanceContext, req: RunRequest): Promise<InstanceRecord[]> {
    checkImageId(req.imageId);
    const type = instanceType(req.instanceType);
    const image = await this.imageForLaunch(ctx, req.imageId);
    if (image.architecture !== type.architecture)
      throw new AwsError(
        400,
        'InvalidParameterValue',
        `The architecture '${type.architecture}' of the specified instance type does not match the architecture '${image.architecture}' of the specified AMI. Specify an instance type and an AMI that have matching architectures, and try again.`,
      );
    const root = image.blockDeviceMappings.find(
      (m) => m.deviceName === image.rootDeviceName && m.snapshotId !== undefined,
    );
    if (root?.snapshotId === undefined || !isSnapshotId(root.snapshotId))
      throw new AwsError(
        400,
        'Unsupported',
        `The image '${req.imageId}' has no EBS snapshot at its root device ${image.rootDeviceName}; only EBS-backed images can be launched here.`,
      );
    const snapshotCtx = { account: image.ownerId, region: ctx.region };
    const snapshot = await this.deps.engine.getSnapshot(snapshotCtx, root.snapshotId);
    if (snapshot === undefined || snapshot.status !== 'completed')
      throw new AwsError(
        400,
        'InvalidSnapshot.NotFound',
        `The snapshot '${root.snapshotId}' does not exist.`,
      );
    const volumeSize = root.volumeSize ?? snapshot.volumeSize;
    if (!Number.isInteger(volumeSize) || volumeSize < snapshot.volumeSize)
      throw new AwsError(
        400,
        'InvalidBlockDeviceMapping',
        `Volume of size ${volumeSize}GB is smaller than snapshot '${root.snapshotId}', expect size >= ${snapshot.volumeSize}GB`,
      );
    if (volumeSize > MAX_VOLUME_GIB)
      throw new AwsError(
        400,
        'InvalidBlockDeviceMapping',
        `Volume of ${volumeSize}GiB is too large: at most ${MAX_VOLUME_GIB}GiB.`,
      );
    const bootMode = this.bootMode(image.bootMode);
    const fingerprint = createHash('sha256')
      .update(
        JSON.stringify([
          req.imageId,
          req.instanceType,
          req.minCount,
          req.maxCount,
          req.tags,
          req.userData,
          req.shutdownBehavior,
        ]),
      )
      .digest('hex');
    const now = this.deps.now();
    const launched = await this.deps.state.update(
      ctx.account,
      ctx.region,
      SERVICE,
      emptyInstances,
      (doc: InstancesDocument) => {
        if (req.clientToken !== null) {
          const earlier = doc.instances.filter((r) => r.clientToken === req.clientToken);
          if (earlier.length > 0) {
            if (earlier.some((r) => r.requestFingerprint !== fingerprint))
              throw new AwsError(
                400,
                'IdempotentParameterMismatch',
                'Arguments on this idempotent request are inconsistent with arguments used in previous request(s).',
              );
            return { records: earlier, fresh: false };
          }
        }
        this.prune(doc, now);
        const active = doc.instances.filter((r) => r.state !== 'terminated').length;
        const count = Math.min(req.maxCount, this.maxInstances - active);
        if (count < req.minCount)
          throw new AwsError(
            400,
            'InstanceLimitExceeded',
            `You have requested more instances (${req.minCount}) than your current instance limit of ${this.maxInstances} allows for the specified instance type. Please visit http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit.`,
          );
        const reservationId = newId('r');
        const records: InstanceRecord[] = [];
        for (let i = 0; i < count; i++)
          records.push({
            instanceId: newId('i'),
            reservationId,
            ownerId: ctx.account,
            region: ctx.region,
            availabilityZone: `${ctx.region}a`,
            imageId: req.imageId,
            snapshotOwner: image.ownerId,
            snapshotId: root.snapshotId!,
            volumeSize,
            rootVolumeId: newId('vol'),
            rootDeviceName: image.rootDeviceName,
            instanceType: type.name,
            architecture: image.architecture,
            bootMode,
            state: 'pending',
            stateReason: null,
            transitionReason: '',
            launchTime: now,
            amiLaunchIndex: i,
            clientToken: req.clientToken,
            requestFingerprint: fingerprint,
            tags: req.tags,
            userData: req.userData,
            shutdownBehavior: req.shutdownBehavior,
            terminatedAt: null,
            pid: null,
          });
        doc.instances.push(...records);
        return { records, fresh: true };
      },
    );
    if (launched.fresh)
      for (const r of launched.records)
        this.enqueue(ctx, r.instanceId, () => this.boot(ctx, r.instanceId));
    return launched.records;
  }

  /** The account's visible instances in the region, or those named (InvalidInstanceID.NotFound for others). */
  async describe(ctx: InstanceContext, ids: readonly string[] = []): Promise<InstanceRecord[]> {
    for (const id of ids) checkInstanceId(id);
    const visible = await this.visible(ctx);
    if (ids.length === 0) return visible;
    const missing = [...new Set(ids)].filter((id) => !visible.some((r) => r.instanceId === id));
    if (missing.length > 0) throw notFound(missing);
    return visible.filter((r) => ids.includes(r.instanceId));
  }

  async start(ctx: InstanceContext, ids: readonly string[]): Promise<StateChange[]> {
    return this.transition(
      ctx,
      ids,
      (r) => {
        if (r.state === 'pending' || r.state === 'running') return r.state;
        if (r.state === 'stopped') return 'pending';
        throw new AwsError(
          400,
          'IncorrectInstanceState',
          `The instance '${r.instanceId}' is not in a state from which it can be started.`,
        );
      },
      (id) => this.boot(ctx, id),
    );
  }

  async stop(ctx: InstanceContext, ids: readonly string[], force: boolean): Promise<StateChange[]> {
    return this.transition(
      ctx,
      ids,
      (r) => {
        if (r.state === 'stopped' || r.state === 'stopping') return r.state;
        if (r.state === 'running') return 'stopping';
        throw new AwsError(
          400,
          'IncorrectInstanceState',
          `This instance '${r.instanceId}' is not in a state from which it can be stopped.`,
        );
      },
      (id) => this.halt(ctx, id, force),
    );
  }

  async terminate(ctx: InstanceContext, ids: readonly string[]): Promise<StateChange[]> {
    return this.transition(
      ctx,
      ids,
      (r) => (r.state === 'terminated' || r.state === 'shutting-down' ? r.state : 'shutting-down'),
      (id) => this.finishTermination(ctx, id),
    );
  }

  /** The last 64 KiB of the instance's serial console and when it last changed. */
  async consoleOutput(
    ctx: InstanceContext,
    id: string,
  ): Promise<{ output: Buffer; timestamp: number }> {
    const [record] = await this.describe(ctx, [id]);
    const log = await this.consoleOf(ctx, record!.instanceId);
    return log.snapshot();
  }

  /** Stops every QEMU (QMP quit so overlays are flushed, then SIGKILL); records keep their states. */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(
      [...this.live.values()].map(async (l) => {
        await l.vm?.shutdown(0, true);
        await l.console?.flush().catch(() => {});
      }),
    );
    await Promise.allSettled([...this.tasks]);
    // A boot that was starting QEMU when close began has stopped it by now; flush what it wrote.
    await Promise.all([...this.live.values()].map((l) => l.console?.flush().catch(() => {})));
  }

  // ---- Background work ----------------------------------------------------

  /** Brings a pending instance up: cache, overlay, firmware variables, QEMU. */
  private async boot(ctx: InstanceContext, id: string): Promise<void> {
    const record = await this.record(ctx, id);
    if (record?.state !== 'pending' || this.closing) return;
    let raw: string;
    try {
      raw = await this.cache.acquire(
        { owner: record.snapshotOwner, region: record.region, snapshotId: record.snapshotId },
        id,
      );
    } catch (error) {
      if (this.closing) return;
      const reason =
        error instanceof CacheError && error.reason === 'capacity'
          ? {
              code: 'Server.InsufficientInstanceCapacity',
              message: `Server.InsufficientInstanceCapacity: ${error.message}`,
            }
          : internal(`Internal error on launch: ${(error as Error).message}`);
      await this.failLaunch(ctx, id, reason);
      return;
    }
    const log = await this.consoleOf(ctx, id);
    if (this.tools.qemu === null || this.tools.qemuImg === null) {
      log.append(
        Buffer.from(
          `ferry: ${gmt(this.deps.now())}: qemu-system-x86_64 is not installed on this host, so instance ${id} is recorded as running but does not boot.\r\n`,
        ),
      );
      await log.flush();
      await this.patch(ctx, id, (r) =>
        r.state === 'pending' ? { ...r, state: 'running', stateReason: REASONS.noQemu } : r,
      );
      return;
    }
    const dir = this.instanceDir(ctx, id);
    const overlay = join(dir, 'overlay.qcow2');
    // A first boot that fails ends the launch (terminated); a later one leaves the instance stopped.
    const firstBoot = !(await exists(overlay));
    let vm: QemuVm;
    try {
      await mkdir(dir, { recursive: true });
      if (!(await exists(overlay))) {
        // The overlay reads the cached raw file and takes every write of the guest.
        const tmp = `${overlay}.tmp`;
        await rm(tmp, { force: true });
        await run(this.tools.qemuImg, [
          'create',
          '-q',
          '-f',
          'qcow2',
          '-F',
          'raw',
          '-b',
          raw,
          tmp,
          `${record.volumeSize}G`,
        ]);
        await rename(tmp, overlay);
      }
      let uefi: { code: string; vars: string } | null = null;
      if (record.bootMode === 'uefi') {
        if (this.tools.ovmf === null) throw new Error('OVMF (package ovmf) is not installed');
        const vars = join(dir, 'OVMF_VARS.fd');
        if (!(await exists(vars))) await copyFile(this.tools.ovmf.vars, vars);
        uefi = { code: this.tools.ovmf.code, vars };
      }
      const type = instanceType(record.instanceType);
      if (this.closing) return;
      vm = await QemuVm.start(
        { instanceId: id, disk: overlay, vcpus: type.vcpus, memoryMiB: type.memoryMiB, uefi },
        this.tools,
        log,
      );
    } catch (error) {
      if (this.closing) return;
      const reason = internal(`QEMU did not start: ${(error as Error).message}`);
      if (firstBoot) await this.failLaunch(ctx, id, reason);
      else
        await this.patch(ctx, id, (r) =>
          r.state === 'pending' ? { ...r, state: 'stopped', stateReason: reason, pid: null } : r,
        );
      return;
    }
    const live = this.liveOf(ctx, id);
    live.vm = vm;
    void vm.exited.then((exit) => this.track(this.exited(ctx, id, vm, exit)));
    if (this.closing) {
      await vm.shutdown(0, true);
      return;
    }
    await this.patch(ctx, id, (r) =>
      r.state === 'pending'
        ? { ...r, state: 'running', stateReason: null, pid: vm.running ? vm.pid : null }
        : { ...r, pid: vm.running ? vm.pid : r.pid },
    );
  }

  /** Stops a stopping instance's guest. */
  private async halt(ctx: InstanceContext, id: string, force: boolean): Promise<void> {
    const vm = this.live.get(keyOf(ctx, id))?.vm;
    if (vm !== undefined) await vm.shutdown(this.stopTimeoutMs, force);
    await this.patch(ctx, id, (r) =>
      r.state === 'stopping' ? { ...r, state: 'stopped', stateReason: REASONS.user, pid: null } : r,
    );
  }

  /** Ends a shutting-down instance: guest stopped, overlay and variables removed, cache released. */
  private async finishTermination(ctx: InstanceContext, id: string): Promise<void> {
    const vm = this.live.get(keyOf(ctx, id))?.vm;
    if (vm !== undefined) await vm.shutdown(this.stopTimeoutMs);
    const dir = this.instanceDir(ctx, id);
    await rm(join(dir, 'overlay.qcow2'), { force: true });
    await rm(join(dir, 'overlay.qcow2.tmp'), { force: true });
    await rm(join(dir, 'OVMF_VARS.fd'), { force: true });
    await this.cache.release(id);
    const now = this.deps.now();
    await this.patch(ctx, id, (r) =>
      r.state === 'shutting-down'
        ? {
            ...r,
            state: 'terminated',
            stateReason: r.stateReason ?? REASONS.user,
            terminatedAt: now,
            pid: null,
            // Kept no longer than the instance runs: terminated records stay an hour, lightly.
            userData: null,
          }
        : r,
    );
  }

  /** QEMU exited: a guest that powered off is stopped (or terminated, if it asked for that). */
  private async exited(ctx: InstanceContext, id: string, vm: QemuVm, exit: VmExit): Promise<void> {
    const live = this.live.get(keyOf(ctx, id));
    if (live?.vm === vm) live.vm = undefined;
    await live?.console?.flush().catch(() => {});
    if (this.closing) return;
    const crashed = !exit.guestShutdown && exit.code !== 0;
    const reason = crashed
      ? internal(`QEMU exited (${exit.signal ?? `code ${exit.code}`}): ${exit.stderr}`)
      : REASONS.guest;
    const now = this.deps.now();
    const after = await this.patch(ctx, id, (r) => {
      if (r.state === 'stopping')
        return { ...r, state: 'stopped', stateReason: REASONS.user, pid: null };
      if (r.state !== 'running' && r.state !== 'pending') return r;
      if (!crashed && r.shutdownBehavior === 'terminate')
        return {
          ...r,
          state: 'shutting-down',
          stateReason: reason,
          transitionReason: `User initiated (${gmt(now)})`,
          pid: null,
        };
      return {
        ...r,
        state: 'stopped',
        stateReason: reason,
        transitionReason: `User initiated (${gmt(now)})`,
        pid: null,
      };
    });
    if (after?.state === 'shutting-down')
      this.enqueue(ctx, id, () => this.finishTermination(ctx, id));
  }

  private async failLaunch(ctx: InstanceContext, id: string, reason: StateReason): Promise<void> {
    await this.patch(ctx, id, (r) =>
      r.state === 'pending' || r.state === 'running'
        ? { ...r, state: 'shutting-down', stateReason: reason }
        : r,
    );
    await this.finishTermination(ctx, id);
  }

  // ---- Restart ------------------------------------------------------------

  /** Picks up every account's instances after the endpoint (re)opens. */
  private async recover(): Promise<void> {
    const root = this.deps.state.root;
    for (const account of await listDir(root)) {
      if (!/^\d{12}$/.test(account)) continue;
      for (const region of await listDir(join(root, account))) {
        if (!isRegion(region) || !(await exists(join(root, account, region, `${SERVICE}.json`))))
          continue;
        const ctx = { account, region };
        const doc = await this.deps.state.read(account, region, SERVICE, emptyInstances);
        for (const r of doc.instances) {
          if (r.pid !== null)
            await killOrphan(r.pid, join(this.instanceDir(ctx, r.instanceId), 'overlay.qcow2'));
        }
        const now = this.deps.now();
        const changed = await this.deps.state.update(
          account,
          region,
          SERVICE,
          emptyInstances,
          (d: InstancesDocument) => {
            this.prune(d, now);
            d.instances.forEach((r, i) => {
              let next: InstanceRecord = { ...r, pid: null };
              if (r.state === 'running') next = { ...next, state: 'pending' };
              if (r.state === 'stopping')
                next = { ...next, state: 'stopped', stateReason: REASONS.user };
              d.instances[i] = next;
            });
            return d.instances.map((r) => ({ id: r.instanceId, state: r.state }));
          },
        );
        for (const { id, state } of changed) {
          if (state === 'pending') this.enqueue(ctx, id, () => this.boot(ctx, id));
          if (state === 'shutting-down')
            this.enqueue(ctx, id, () => this.finishTermination(ctx, id));
        }
      }
    }
  }

  // ---- Helpers ------------------------------------------------------------

  private bootMode(mode: ImageForLaunch['bootMode']): BootMode {
    if (mode === 'uefi') {
      if (this.tools.qemu !== null && this.tools.ovmf === null)
        throw new AwsError(
          400,
          'Unsupported',
          'The requested configuration is currently not supported: the image boots with UEFI and OVMF is not installed on this host.',
        );
      return 'uefi';
    }
    if (mode === 'uefi-preference') return this.tools.ovmf === null ? 'legacy-bios' : 'uefi';
    return 'legacy-bios';
  }

  /** Applies a state walk to every named instance, all checked before any changes. */
  private async transition(
    ctx: InstanceContext,
    ids: readonly string[],
    next: (r: InstanceRecord) => InstanceStateName,
    work: (id: string) => Promise<void>,
  ): Promise<StateChange[]> {
    for (const id of ids) checkInstanceId(id);
    await this.describe(ctx, ids);
    const now = this.deps.now();
    const changes = await this.deps.state.update(
      ctx.account,
      ctx.region,
      SERVICE,
      emptyInstances,
      (doc: InstancesDocument) => {
        const unique = [...new Set(ids)];
        const planned = unique.map((id) => {
          const i = doc.instances.findIndex((r) => r.instanceId === id);
          const r = doc.instances[i];
          if (r === undefined) throw notFound([id]);
          return { i, r, to: next(r) };
        });
        return planned.map(({ i, r, to }) => {
          if (to !== r.state) {
            const stopping = to === 'stopping' || to === 'shutting-down';
            doc.instances[i] = {
              ...r,
              state: to,
              ...(stopping
                ? { transitionReason: `User initiated (${gmt(now)})`, stateReason: REASONS.user }
                : {}),
              ...(to === 'pending' ? { stateReason: null } : {}),
            };
          }
          return { instanceId: r.instanceId, previous: r.state, current: to };
        });
      },
    );
    for (const c of changes)
      if (c.previous !== c.current) this.enqueue(ctx, c.instanceId, () => work(c.instanceId));
    return changes;
  }

  /** The tag registry's view of instances: CreateTags, DeleteTags and DescribeTags reach them. */
  taggable(): TaggableKind {
    return {
      resourceType: 'instance',
      prefix: 'i-',
      notFound: (id) => notFound([id]),
      exists: async (caller, id) => (await this.visible(caller)).some((r) => r.instanceId === id),
      updateTags: async (caller, id, change) => {
        if (!(await this.visible(caller)).some((r) => r.instanceId === id)) throw notFound([id]);
        const r = await this.patch(caller, id, (rec) => ({
          ...rec,
          tags: change(rec.tags).map((t) => ({ key: t.key, value: t.value })),
        }));
        if (r === undefined) throw notFound([id]);
      },
      list: async (caller) =>
        (await this.visible(caller)).map((r) => ({ id: r.instanceId, tags: r.tags })),
    };
  }

  private async visible(ctx: InstanceContext): Promise<InstanceRecord[]> {
    const doc = await this.deps.state.read(ctx.account, ctx.region, SERVICE, emptyInstances);
    const now = this.deps.now();
    return doc.instances.filter((r) => !this.expired(r, now));
  }

  private expired(r: InstanceRecord, now: number): boolean {
    return (
      r.state === 'terminated' && r.terminatedAt !== null && now - r.terminatedAt >= this.visibleMs
    );
  }

  /** Drops terminated instances no longer listed (their directories too) and caps the document. */
  private prune(doc: InstancesDocument, now: number): void {
    const gone = doc.instances.filter((r) => this.expired(r, now));
    let kept = doc.instances.filter((r) => !this.expired(r, now));
    if (kept.length > MAX_RECORDS) {
      const terminated = kept
        .filter((r) => r.state === 'terminated')
        .sort((a, b) => (a.terminatedAt ?? 0) - (b.terminatedAt ?? 0))
        .slice(0, kept.length - MAX_RECORDS);
      gone.push(...terminated);
      kept = kept.filter((r) => !terminated.includes(r));
    }
    doc.instances.splice(0, doc.instances.length, ...kept);
    for (const r of gone) {
      const ctx = { account: r.ownerId, region: r.region };
      this.live.delete(keyOf(ctx, r.instanceId));
      void rm(this.instanceDir(ctx, r.instanceId), { recursive: true, force: true }).catch(
        () => {},
      );
    }
  }

  private async record(ctx: InstanceContext, id: string): Promise<InstanceRecord | undefined> {
    const doc = await this.deps.state.read(ctx.account, ctx.region, SERVICE, emptyInstances);
    return doc.instances.find((r) => r.instanceId === id);
  }

  /** Changes one record in place (atomically with the rest of the document); returns it. */
  private patch(
    ctx: InstanceContext,
    id: string,
    change: (r: InstanceRecord) => InstanceRecord,
  ): Promise<InstanceRecord | undefined> {
    return this.deps.state.update(
      ctx.account,
      ctx.region,
      SERVICE,
      emptyInstances,
      (doc: InstancesDocument) => {
        const i = doc.instances.findIndex((r) => r.instanceId === id);
        if (i < 0) return undefined;
        doc.instances[i] = change(doc.instances[i]!);
        return doc.instances[i];
      },
    );
  }

  private instanceDir(ctx: InstanceContext, id: string): string {
    if (!/^\d{12}$/.test(ctx.account) || !isRegion(ctx.region)) throw new Error('bad context');
    checkInstanceId(id);
    return join(this.deps.dataDir, 'instances', ctx.account, ctx.region, id);
  }

  private liveOf(ctx: InstanceContext, id: string): Live {
    const key = keyOf(ctx, id);
    let l = this.live.get(key);
    if (l === undefined) {
      l = { vm: undefined, console: undefined, queue: Promise.resolve() };
      this.live.set(key, l);
    }
    return l;
  }

  private async consoleOf(ctx: InstanceContext, id: string): Promise<ConsoleLog> {
    const l = this.liveOf(ctx, id);
    if (l.console === undefined) {
      const dir = this.instanceDir(ctx, id);
      await mkdir(dir, { recursive: true });
      const log = await ConsoleLog.open(join(dir, 'console.log'), this.deps.now);
      l.console ??= log;
    }
    return l.console;
  }

  /** Runs `fn` after the instance's earlier tasks; its failure becomes the instance's state reason. */
  private enqueue(ctx: InstanceContext, id: string, fn: () => Promise<void>): void {
    const l = this.liveOf(ctx, id);
    const task = l.queue.then(fn).catch(async (error: unknown) => {
      if (this.closing) return;
      await this.patch(ctx, id, (r) => ({
        ...r,
        stateReason: internal((error as Error).message),
      })).catch(() => {});
    });
    l.queue = task;
    this.track(task);
  }

  private track(task: Promise<void>): void {
    this.tasks.add(task);
    void task.finally(() => this.tasks.delete(task));
  }
}

function notFound(ids: readonly string[]): AwsError {
  const list = ids.slice(0, 20).join(', ');
  return new AwsError(
    400,
    'InvalidInstanceID.NotFound',
    ids.length === 1
      ? `The instance ID '${list}' does not exist`
      : `The instance IDs '${list}' do not exist`,
  );
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

/**
 * Kills a QEMU left by an endpoint that was killed (setpriv normally takes it
 * down with ferry), but only if that pid is still QEMU on this instance's
 * overlay: a pid may have been reused by anything since.
 */
async function killOrphan(pid: number, overlay: string): Promise<void> {
  let cmdline: string;
  try {
    cmdline = await readFile(`/proc/${pid}/cmdline`, 'latin1');
  } catch {
    return;
  }
  if (!cmdline.includes('qemu-system') || !cmdline.includes(`file=${overlay.replace(/,/g, ',,')},`))
    return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  for (let i = 0; i < 100; i++) {
    try {
      await stat(`/proc/${pid}`);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
