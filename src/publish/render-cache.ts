/**
 * Renders a stream revision for publishing, once: a raw disk in the state
 * directory (sparse, what block uploads read best), with the stream's
 * previous render as its base so that unchanged files keep their blocks and
 * the next snapshot is small. A render already there (same revision, same
 * options) is reused; its map says it is whole (the map is written last).
 */

import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type Firmware, mapPathOf, renderDisk } from '../render/index.js';
import type { LocalStore } from '../store/index.js';
import { writeFileAtomic } from '../store/local-store.js';

/** The build options a stream gives in ferry.yaml (the disk layout). */
export interface BuildOptions {
  readonly fs?: 'ext4' | 'xfs';
  readonly boot?: 'grub' | 'extlinux' | 'none';
  readonly firmware?: Firmware;
  readonly table?: 'gpt' | 'mbr';
  /** Bytes; absent: the contents plus the margin. */
  readonly size?: number;
  readonly margin?: number;
  readonly kernelArgs?: string;
}

export interface RenderedImage {
  readonly path: string;
  readonly map: string;
  readonly reused: boolean;
  readonly base: string | null;
  readonly bytes: number;
  readonly changedChunks: number;
  readonly totalChunks: number;
  readonly seconds: number;
}

interface RenderIndex {
  readonly format: 'ferry-renders';
  /** Per stream, newest last: the renders kept (at most KEEP). */
  readonly streams: Record<string, Array<{ revision: string; options: string; file: string }>>;
}

/** Renders kept per stream: the newest is the next one's base; one more for a rollback. */
const KEEP = 2;

export function optionsKey(options: BuildOptions): string {
  const canonical = JSON.stringify(
    Object.fromEntries(Object.entries(options).sort(([a], [b]) => (a < b ? -1 : 1))),
  );
  return createHash('sha256').update(canonical).digest('hex').slice(0, 12);
}

async function readIndex(path: string): Promise<RenderIndex> {
  try {
    const v = JSON.parse(await readFile(path, 'utf8')) as RenderIndex;
    if (v?.format === 'ferry-renders' && typeof v.streams === 'object' && v.streams !== null)
      return v;
  } catch {
    // missing or damaged: start again (renders are a cache)
  }
  return { format: 'ferry-renders', streams: {} };
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

export async function renderForPublish(
  store: LocalStore,
  stream: string,
  revision: string,
  options: BuildOptions,
  dir: string,
  run: { signal?: AbortSignal; onProgress?: (done: number, total: number) => void } = {},
): Promise<RenderedImage> {
  const started = performance.now();
  const key = optionsKey(options);
  const file = `${stream.replace(/\//g, '~')}-${revision.slice(0, 16)}-${key}.raw`;
  const path = join(dir, file);
  const map = mapPathOf(path);
  await mkdir(dir, { recursive: true });
  const indexPath = join(dir, 'index.json');
  const index = await readIndex(indexPath);
  const kept = (index.streams[stream] ?? []).filter((r) => r.file !== file);
  if ((await exists(path)) && (await exists(map))) {
    return {
      path,
      map,
      reused: true,
      base: null,
      bytes: (await stat(path)).size,
      changedChunks: 0,
      totalChunks: 0,
      seconds: (performance.now() - started) / 1000,
    };
  }
  const previous = [...kept].reverse().find((r) => r.options === key);
  let base: string | null = null;
  if (previous !== undefined) {
    const prevPath = join(dir, previous.file);
    if (await exists(mapPathOf(prevPath)))
      base = (await exists(prevPath)) ? prevPath : mapPathOf(prevPath);
  }
  const manifest = await store.getManifest(revision, run.signal);
  const r = await renderDisk(store, revision, manifest, {
    out: path,
    format: 'raw',
    overwrite: true,
    ...(options.fs === undefined ? {} : { fs: options.fs }),
    ...(options.boot === undefined ? {} : { boot: options.boot }),
    ...(options.firmware === undefined ? {} : { firmware: options.firmware }),
    ...(options.table === undefined ? {} : { table: options.table }),
    ...(options.size === undefined ? {} : { size: options.size }),
    ...(options.margin === undefined ? {} : { margin: options.margin }),
    ...(options.kernelArgs === undefined ? {} : { kernelArgs: options.kernelArgs }),
    ...(base === null ? {} : { base }),
    ...(run.signal === undefined ? {} : { signal: run.signal }),
    ...(run.onProgress === undefined ? {} : { onProgress: run.onProgress }),
  });
  // Keep the newest KEEP renders of the stream; older images go, their maps too.
  const next = [...kept, { revision, options: key, file }];
  const drop = next.slice(0, Math.max(0, next.length - KEEP));
  index.streams[stream] = next.slice(-KEEP);
  await writeFileAtomic(indexPath, `${JSON.stringify(index, null, 2)}\n`);
  for (const d of drop) {
    await rm(join(dir, d.file), { force: true });
    await rm(mapPathOf(join(dir, d.file)), { force: true });
  }
  return {
    path,
    map: r.map,
    reused: false,
    base,
    bytes: r.bytes,
    changedChunks: r.changedChunks,
    totalChunks: r.totalChunks,
    seconds: (performance.now() - started) / 1000,
  };
}
