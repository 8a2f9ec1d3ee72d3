/**
 * `ferry publish` as a library call: ferry.yaml's stream and targets turned
 * into a publish (ingesting the stream's source when it changed), the
 * embedded local cloud started for `endpoint: local` targets, and a bare
 * `ferry publish` resuming what a crash left unfinished.
 */

import { stat } from 'node:fs/promises';
import type { FerryConfig, StreamConfig, TargetConfig } from '../config/index.js';
import { FerryError } from '../errors/index.js';
import { ingestDirectory, ingestTarball, LocalStore } from '../store/index.js';
import { defaultDependencies } from './dependencies.js';
import { startLocalCloud } from './local-cloud.js';
import type { PlanNode } from './plan.js';
import {
  type PublishResult,
  type PublishSource,
  planFor,
  publish,
  unfinishedRuns,
} from './publish.js';
import type { BuildOptions } from './render-cache.js';
import { statePaths } from './state-paths.js';
import { needsLocalCloud, resolveTargets, selectTargets } from './targets.js';
import type { PublishEvent } from './types.js';

export interface PublishInput {
  /** STREAM or STREAM@REV (a revision id or a unique prefix of one). */
  readonly ref?: string;
  /** --image FILE --name NAME: a disk image published as it is. */
  readonly image?: { readonly path: string; readonly name: string };
  readonly targets?: readonly string[];
  readonly dryRun?: boolean;
  readonly verify?: boolean;
  readonly concurrency?: number;
  readonly parallel?: number;
  readonly version: string;
  readonly signal?: AbortSignal;
  readonly onEvent?: (e: PublishEvent) => void;
}

export interface PublishOutput {
  readonly plan: PlanNode[];
  /** Null for --dry-run. */
  readonly result: PublishResult | null;
  /** What ingesting the stream's source did (STREAM without @REV and a source in ferry.yaml). */
  readonly ingested: {
    readonly revision: string;
    readonly unchanged: boolean;
    readonly files: number;
  } | null;
}

/** The stream's render options; the fs layout only for targets that boot a filesystem (OpenStack's AMI/AKI/ARI). */
export function buildOptionsOf(
  stream: StreamConfig,
  targets: readonly TargetConfig[] = [],
): BuildOptions {
  const aws = targets.find((t) => t.type === 'aws');
  if (stream.layout === 'fs' && aws !== undefined)
    throw new FerryError(
      'FERRY_NOT_CAPABLE',
      `Cannot publish stream ${stream.name} to AWS target ${aws.name}: its layout is fs, and AWS boots disks (layout: disk)`,
      {
        hint: 'Publish fs-layout streams to OpenStack targets only (--targets), or use layout: disk',
      },
    );
  return {
    ...(stream.layout === 'fs' ? { layout: 'fs' as const } : {}),
    fs: stream.fs,
    boot: stream.boot,
    ...(stream.firmware === undefined ? {} : { firmware: stream.firmware }),
    ...(stream.size === 'auto' ? {} : { size: stream.size }),
  };
}

function streamConfig(config: FerryConfig, name: string): StreamConfig {
  const stream = config.streams.find((s) => s.name === name);
  if (stream === undefined)
    throw new FerryError(
      'FERRY_USAGE',
      `Cannot publish ${name}: ferry.yaml has no stream of that name`,
    );
  return stream;
}

async function openStore(config: FerryConfig): Promise<LocalStore> {
  if (config.store === undefined || /^(https?|s3):\/\//.test(config.store))
    throw new FerryError(
      'FERRY_NOT_CAPABLE',
      'Cannot publish a stream: ferry.yaml must name a local store directory (store: DIR)',
    );
  return LocalStore.open(config.store);
}

async function sourceOf(
  config: FerryConfig,
  input: PublishInput,
  chosen: readonly TargetConfig[],
): Promise<{ source: PublishSource; ingested: PublishOutput['ingested'] }> {
  if (input.image !== undefined) {
    await stat(input.image.path).catch((error: unknown) => {
      throw new FerryError(
        'FERRY_NOT_FOUND',
        `Cannot publish ${input.image?.path}: it does not exist`,
        {
          cause: error,
        },
      );
    });
    return {
      source: { kind: 'image', name: input.image.name, path: input.image.path },
      ingested: null,
    };
  }
  const ref = input.ref ?? '';
  const at = ref.indexOf('@');
  const name = at < 0 ? ref : ref.slice(0, at);
  const stream = config.streams.find((s) => s.name === name);
  if (stream === undefined)
    throw new FerryError(
      'FERRY_USAGE',
      `Cannot publish ${name}: ferry.yaml has no stream of that name`,
    );
  const build = buildOptionsOf(stream, chosen);
  const store = await openStore(config);
  let ingested: PublishOutput['ingested'] = null;
  let revisionRef = ref;
  if (at < 0 && stream.source !== undefined) {
    const st = await stat(stream.source).catch((error: unknown) => {
      throw new FerryError('FERRY_NOT_FOUND', `Cannot ingest ${stream.source}: it does not exist`, {
        cause: error,
      });
    });
    const revisions = await store.revisions(name).catch(() => []);
    const previousId = revisions.at(-1)?.id;
    const previous =
      previousId === undefined
        ? undefined
        : await store.getManifest(previousId).catch(() => undefined);
    const opts = {
      ...(input.signal === undefined ? {} : { signal: input.signal }),
      ...(previous === undefined ? {} : { previous }),
    };
    const stats = st.isDirectory()
      ? await ingestDirectory(store, stream.source, opts)
      : await ingestTarball(store, stream.source, opts);
    const { unchanged } = await store.commit(name, stats.revision, stream.source, input.signal);
    ingested = { revision: stats.revision, unchanged, files: stats.files };
    revisionRef = `${name}@${stats.revision}`;
  }
  const { record } = await store.resolve(revisionRef);
  return {
    source: { kind: 'stream', stream: name, revision: record.id, store, build },
    ingested,
  };
}

/** Publishes per ferry.yaml; a bare call (no ref, no image) resumes unfinished runs. */
export async function publishFromConfig(
  config: FerryConfig,
  input: PublishInput,
): Promise<PublishOutput[]> {
  const state = statePaths(config.state);
  if (input.ref === undefined && input.image === undefined) {
    const pending = await unfinishedRuns(state);
    if (pending.length === 0)
      throw new FerryError(
        'FERRY_USAGE',
        'Cannot publish: give STREAM[@REV] or --image FILE --name NAME (no run is waiting to be resumed)',
      );
    const out: PublishOutput[] = [];
    for (const run of pending) {
      const r = run.request;
      out.push(
        ...(await publishFromConfig(config, {
          ...input,
          ...(r.image === null
            ? { ref: `${r.stream}@${r.revision}` }
            : { image: { path: r.image, name: r.stream } }),
          targets: r.targets,
        })),
      );
    }
    return out;
  }
  const streamName = input.image?.name ?? (input.ref ?? '').split('@')[0]!;
  const chosen = selectTargets(config, {
    ...(input.targets === undefined ? {} : { only: input.targets }),
    // An --image name is not a ferry.yaml stream: every target (or --targets) takes it.
    ...(input.image === undefined ? { stream: streamName } : {}),
  });
  if (chosen.length === 0)
    throw new FerryError(
      'FERRY_USAGE',
      `Cannot publish ${streamName}: no target in ferry.yaml takes it`,
    );
  const local =
    !input.dryRun && needsLocalCloud(chosen) ? await startLocalCloud(state.cloud) : undefined;
  try {
    const targets = resolveTargets(chosen, {
      localUrl: local?.url ?? 'http://127.0.0.1:0',
      ...(input.concurrency === undefined ? {} : { concurrency: input.concurrency }),
    });
    if (input.dryRun === true) {
      if (input.image === undefined) buildOptionsOf(streamConfig(config, streamName), chosen);
      const ingest = input.image === undefined && !(input.ref ?? '').includes('@');
      return [
        {
          plan: planFor(
            { render: input.image === undefined, targets, verify: input.verify === true },
            ingest,
          ),
          result: null,
          ingested: null,
        },
      ];
    }
    const { source, ingested } = await sourceOf(config, input, chosen);
    const plan = planFor(
      { render: source.kind === 'stream', targets, verify: input.verify === true },
      ingested !== null,
    );
    const result = await publish(
      {
        source,
        targets,
        state,
        version: input.version,
        ...(input.parallel === undefined ? {} : { parallel: input.parallel }),
        verify: input.verify === true,
        ...(input.signal === undefined ? {} : { signal: input.signal }),
        ...(input.onEvent === undefined ? {} : { onEvent: input.onEvent }),
      },
      defaultDependencies({ version: input.version, verify: input.verify === true }),
    );
    return [{ plan, result, ingested }];
  } finally {
    await local?.close();
  }
}
