import { setMaxListeners } from 'node:events';
import type { InspectReport } from '../inspect/index.js';
import type { LocalStore } from '../store/index.js';
import { workerPool } from '../util/ordered-pool.js';
import type { ImageFacts } from './image-facts.js';
import { Journal, newRunId, type RunRequest } from './journal.js';
import { type Method, makePlan, type PlanNode } from './plan.js';
import { type BuildOptions, type RenderedImage, renderForPublish } from './render-cache.js';
import { loadRuns, type RunState } from './run-state.js';
import { shareBlockReads } from './shared-block-reads.js';
import { type StatePaths, withStateLock } from './state-paths.js';
import { errorRecord, Steps } from './steps.js';
import type { BlockSource, Placement, PublishEvent } from './types.js';

export interface PublishTarget {
  readonly name: string;
  readonly method: Method;
  readonly placements: readonly Placement[];
  /** Blocks (or parts) in flight per placement. */
  readonly concurrency: number;
  /** vm-import: the bucket the disk is uploaded to. */
  readonly bucket?: string;
  readonly retention?: { readonly keep: number };
  /** vm-import: no progress for this long cancels the import task. */
  readonly stallMs?: number;
}

export type PublishSource =
  | {
      readonly kind: 'stream';
      readonly stream: string;
      readonly revision: string;
      readonly store: LocalStore;
      readonly build: BuildOptions;
    }
  | { readonly kind: 'image'; readonly name: string; readonly path: string };

export interface PublishedImage {
  readonly path: string;
  /** The render's map (block digests), null for an --image file. */
  readonly map: string | null;
  readonly source: BlockSource;
  readonly facts: ImageFacts;
  readonly report: InspectReport | null;
  /**
   * The fs layout: `path` is the root filesystem, and these are the kernel
   * and initrd files it boots with (an AMI/AKI/ARI triple in Glance).
   */
  readonly boot?: { readonly kernel: string; readonly initrd: string | null };
}

/** What a method runner gets for one placement. */
export interface MethodContext {
  readonly runId: string;
  readonly request: RunRequest;
  readonly target: PublishTarget;
  readonly placement: Placement;
  readonly image: PublishedImage;
  readonly state: StatePaths;
  readonly steps: Steps;
  readonly signal: AbortSignal;
  readonly emit: (e: PublishEvent) => void;
}

export interface PlacementOutcome {
  readonly imageId: string;
  readonly snapshotIds: readonly string[];
  /** The image was there already (a re-run): nothing was uploaded. */
  readonly existing: boolean;
  readonly parentSnapshotId: string | null;
  readonly blocksSent: number;
  readonly blocksSkipped: number;
  readonly bytesSent: number;
}

export interface MethodRunner {
  run(ctx: MethodContext): Promise<PlacementOutcome>;
  /** Removes what this run made in the placement after a failure (best effort). */
  cleanUp(ctx: MethodContext): Promise<string[]>;
}

export interface PublishDependencies {
  readonly runners: Readonly<Record<Method, MethodRunner>>;
  readonly openSource: (
    path: string,
    map: string | null,
    signal: AbortSignal,
  ) => Promise<BlockSource>;
  readonly inspect: (
    path: string,
    signal: AbortSignal,
  ) => Promise<{ facts: ImageFacts; report: InspectReport | null }>;
  /** Saves the image's block digests under its content hash (the next run's parent). */
  readonly saveDigests: (
    source: BlockSource,
    state: StatePaths,
    signal: AbortSignal,
  ) => Promise<void>;
}

export interface PublishOptions {
  readonly source: PublishSource;
  readonly targets: readonly PublishTarget[];
  readonly state: StatePaths;
  readonly version: string;
  /** Placements running at once, over all targets (default 8). */
  readonly parallel?: number;
  readonly verify?: boolean;
  readonly signal?: AbortSignal;
  readonly onEvent?: (e: PublishEvent) => void;
}

export interface PlacementReport {
  readonly key: string;
  readonly target: string;
  readonly region: string;
  readonly state: 'done' | 'failed';
  readonly outcome: PlacementOutcome | null;
  readonly error: { readonly code: string; readonly message: string } | null;
  readonly cleanedUp: readonly string[];
  readonly seconds: number;
}

export interface PublishResult {
  readonly runId: string;
  readonly resumed: boolean;
  readonly request: RunRequest;
  readonly render: RenderedImage | null;
  readonly contentHash: string;
  readonly placements: readonly PlacementReport[];
  readonly ok: boolean;
  readonly seconds: number;
}

export function requestOf(source: PublishSource, targets: readonly PublishTarget[]): RunRequest {
  return source.kind === 'stream'
    ? {
        stream: source.stream,
        revision: source.revision,
        image: null,
        targets: targets.map((t) => t.name),
      }
    : {
        stream: source.name,
        revision: null,
        image: source.path,
        targets: targets.map((t) => t.name),
      };
}

const sameRequest = (a: RunRequest, b: RunRequest): boolean =>
  a.stream === b.stream &&
  a.revision === b.revision &&
  a.image === b.image &&
  a.targets.length === b.targets.length &&
  a.targets.every((t, i) => b.targets[i] === t);

export function planFor(
  options: {
    readonly render: boolean;
    readonly targets: readonly PublishTarget[];
    readonly verify?: boolean;
  },
  ingest = false,
): PlanNode[] {
  return makePlan({
    ingest,
    render: options.render,
    placements: options.targets.flatMap((t) =>
      t.placements.map((p) => ({ key: p.key, method: t.method })),
    ),
    verify: options.verify === true,
  });
}

/**
 * Unfinished publish runs (a crash, an abort) in the state directory, oldest
 * first. An interrupted deregister or prune run is not one: resuming it as a
 * publish would put back what it was taking down.
 */
export async function unfinishedRuns(state: StatePaths): Promise<RunState[]> {
  return (await loadRuns(state.runs)).filter(
    (r) =>
      (r.outcome === 'unfinished' || r.outcome === 'aborted') &&
      r.request.kind !== 'deregister' &&
      ![...r.steps.values()].some((s) => s.step === 'deregister'),
  );
}

/** Runs the publish under the state directory's lock. */
export async function publish(
  options: PublishOptions,
  deps: PublishDependencies,
): Promise<PublishResult> {
  return withStateLock(options.state, () => publishLocked(options, deps), options.signal);
}

async function publishLocked(
  options: PublishOptions,
  deps: PublishDependencies,
): Promise<PublishResult> {
  const started = performance.now();
  const signal = runSignal(options.signal);
  const emit = options.onEvent ?? (() => {});
  const request = requestOf(options.source, options.targets);
  const earlier = (await unfinishedRuns(options.state))
    .filter((r) => sameRequest(r.request, request))
    .at(-1);
  const runId = earlier?.id ?? newRunId();
  const journal = await Journal.open(options.state.runs, runId);
  try {
    if (earlier === undefined)
      await journal.append({ type: 'run', state: 'started', request, version: options.version });
    else await journal.append({ type: 'run', state: 'resumed' });
    const steps = new Steps(journal, earlier, null);
    let render: RenderedImage | null = null;
    let path: string;
    let map: string | null = null;
    let boot: PublishedImage['boot'];
    const src = options.source;
    if (src.kind === 'stream') {
      const detail = await steps.run('render', async () => {
        const r = await renderForPublish(
          src.store,
          src.stream,
          src.revision,
          src.build,
          options.state.renders,
          {
            signal,
          },
        );
        render = r;
        return { ...r };
      });
      path = String(detail.path);
      map = String(detail.map);
      const b = detail.boot as { kernel?: unknown; initrd?: unknown } | undefined;
      if (b !== undefined && typeof b.kernel === 'string')
        boot = { kernel: b.kernel, initrd: typeof b.initrd === 'string' ? b.initrd : null };
      render ??= detail as unknown as RenderedImage;
    } else path = src.path;
    const source = await deps.openSource(path, map, signal);
    try {
      const inspected = await steps.run('inspect', async () => {
        const { facts } = await deps.inspect(path, signal);
        await deps.saveDigests(source, options.state, signal);
        return { facts, contentHash: source.contentHash };
      });
      const facts = inspected.facts as ImageFacts;
      const image: PublishedImage = {
        path,
        map,
        source,
        facts,
        report: null,
        ...(boot === undefined ? {} : { boot }),
      };
      const reports = await runPlacements(options, deps, {
        runId,
        request,
        steps,
        image,
        signal,
        emit,
      });
      const ok = reports.every((r) => r.state === 'done');
      const failure = reports.find((r) => r.error !== null)?.error ?? undefined;
      await journal.append({
        type: 'run',
        state: ok ? 'done' : 'failed',
        ...(failure === undefined ? {} : { error: failure }),
      });
      return {
        runId,
        resumed: earlier !== undefined,
        request,
        render,
        contentHash: source.contentHash,
        placements: reports,
        ok,
        seconds: (performance.now() - started) / 1000,
      };
    } finally {
      await source.close();
    }
  } catch (error) {
    const aborted = signal.aborted;
    await journal
      .append({ type: 'run', state: aborted ? 'aborted' : 'failed', error: errorRecord(error) })
      .catch(() => {});
    throw error;
  } finally {
    await journal.close();
  }
}

async function runPlacements(
  options: PublishOptions,
  deps: PublishDependencies,
  run: {
    runId: string;
    request: RunRequest;
    steps: Steps;
    image: PublishedImage;
    signal: AbortSignal;
    emit: (e: PublishEvent) => void;
  },
): Promise<PlacementReport[]> {
  const jobs = options.targets.flatMap((target) =>
    target.placements.map((placement) => ({ target, placement })),
  );
  const reports: PlacementReport[] = [];
  // Several placements of one image: each block is read once for those in step.
  const image =
    jobs.length > 1 ? { ...run.image, source: shareBlockReads(run.image.source) } : run.image;
  await workerPool(jobs, Math.max(1, options.parallel ?? 8), async ({ target, placement }) => {
    const t0 = performance.now();
    const ctx: MethodContext = {
      runId: run.runId,
      request: run.request,
      target,
      placement,
      image,
      state: options.state,
      steps: run.steps.for(placement.key),
      signal: run.signal,
      emit: run.emit,
    };
    const runner = deps.runners[target.method];
    try {
      const outcome = await runner.run(ctx);
      reports.push({
        key: placement.key,
        target: target.name,
        region: placement.region,
        state: 'done',
        outcome,
        error: null,
        cleanedUp: [],
        seconds: (performance.now() - t0) / 1000,
      });
    } catch (error) {
      // An abort leaves everything for the resume; any other failure cleans up.
      if (run.signal.aborted) throw error;
      let cleanedUp: string[] = [];
      try {
        cleanedUp = await ctx.steps
          .run('cleanup', async () => ({ removed: await runner.cleanUp(ctx) }))
          .then((d) => (d.removed as string[]) ?? []);
      } catch {
        // reported through the step's failed record
      }
      run.emit({
        type: 'step',
        placement: placement.key,
        step: 'placement',
        state: 'failed',
        detail: errorRecord(error).message,
      });
      reports.push({
        key: placement.key,
        target: target.name,
        region: placement.region,
        state: 'failed',
        outcome: null,
        error: errorRecord(error),
        cleanedUp,
        seconds: (performance.now() - t0) / 1000,
      });
    }
  });
  const order = new Map(jobs.map((j, i) => [j.placement.key, i]));
  return reports.sort((a, b) => (order.get(a.key) ?? 0) - (order.get(b.key) ?? 0));
}

/**
 * The run's own signal, aborted with the caller's. Every block in flight of
 * every placement listens on it (the SDK adds a listener per request), many
 * more than Node's default of 10 before it warns of a leak.
 */
function runSignal(outer: AbortSignal | undefined): AbortSignal {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  if (outer?.aborted === true) controller.abort(outer.reason);
  else outer?.addEventListener('abort', () => controller.abort(outer.reason), { once: true });
  return controller.signal;
}
