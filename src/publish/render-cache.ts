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
import { FerryError } from '../errors/index.js';
import { type Firmware, mapPathOf, renderDisk, renderFilesystem } from '../render/index.js';
import type { LocalStore } from '../store/index.js';
import { writeFileAtomic } from '../store/local-store.js';

/** The build options a stream gives in ferry.yaml. */
export interface BuildOptions {
  /** disk (the default): a bootable disk; fs: the root filesystem alone, with its kernel and initrd beside it. */
  readonly layout?: 'disk' | 'fs';
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
  /** The fs layout: the kernel and initrd files written beside the filesystem. */
  readonly boot?: { readonly kernel: string; readonly initrd: string | null };
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
  const fsLayout = options.layout === 'fs';
  const kernelOut = `${path}.kernel`;
  const initrdOut = `${path}.initrd`;
  await mkdir(dir, { recursive: true });
  const indexPath = join(dir, 'index.json');
  const index = await readIndex(indexPath);
  const kept = (index.streams[stream] ?? []).filter((r) => r.file !== file);
  if ((await exists(path)) && (await exists(map)) && (!fsLayout || (await exists(kernelOut)))) {
    return {
      path,
      map,
      reused: true,
      base: null,
      bytes: (await stat(path)).size,
      changedChunks: 0,
      totalChunks: 0,
      seconds: (performance.now() - started) / 1000,
      ...(fsLayout
        ? { boot: { kernel: kernelOut, initrd: (await exists(initrdOut)) ? initrdOut : null } }
        : {}),
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
  const common = {
    out: path,
    format: 'raw' as const,
    overwrite: true,
    ...(options.fs === undefined ? {} : { fs: options.fs }),
    ...(options.size === undefined ? {} : { size: options.size }),
    ...(base === null ? {} : { base }),
    ...(run.signal === undefined ? {} : { signal: run.signal }),
    ...(run.onProgress === undefined ? {} : { onProgress: run.onProgress }),
  };
  let boot: RenderedImage['boot'];
  let r: { map: string; bytes: number; changedChunks: number; totalChunks: number };
  if (fsLayout) {
    await rm(kernelOut, { force: true });
    await rm(initrdOut, { force: true });
    const f = await renderFilesystem(store, revision, manifest, {
      ...common,
      kernelOut,
      initrdOut,
    });
    if (f.kernel === null)
      throw new FerryError(
        'FERRY_NOT_CAPABLE',
        `Cannot render ${stream}@${revision.slice(0, 12)} as a filesystem to boot: it has no kernel under /boot`,
        {
          hint: 'The fs layout boots the kernel and initrd found in /boot (vmlinuz-VERSION, initrd.img-VERSION)',
        },
      );
    boot = { kernel: kernelOut, initrd: f.initrd === null ? null : initrdOut };
    r = f;
  } else
    r = await renderDisk(store, revision, manifest, {
      ...common,
      ...(options.boot === undefined ? {} : { boot: options.boot }),
      ...(options.firmware === undefined ? {} : { firmware: options.firmware }),
      ...(options.table === undefined ? {} : { table: options.table }),
      ...(options.margin === undefined ? {} : { margin: options.margin }),
      ...(options.kernelArgs === undefined ? {} : { kernelArgs: options.kernelArgs }),
    });
  // Keep the newest KEEP renders of the stream; older images go, their maps too.
  const next = [...kept, { revision, options: key, file }];
  const drop = next.slice(0, Math.max(0, next.length - KEEP));
  index.streams[stream] = next.slice(-KEEP);
  await writeFileAtomic(indexPath, `${JSON.stringify(index, null, 2)}\n`);
  for (const d of drop) {
    await rm(join(dir, d.file), { force: true });
    await rm(mapPathOf(join(dir, d.file)), { force: true });
    await rm(`${join(dir, d.file)}.kernel`, { force: true });
    await rm(`${join(dir, d.file)}.initrd`, { force: true });
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
    ...(boot === undefined ? {} : { boot }),
  };
}
