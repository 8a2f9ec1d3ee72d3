import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import type { WritableFormat } from '../disk/index.js';
import { FerryError } from '../errors/index.js';
import type { LocalStore, Manifest } from '../store/index.js';
import { type BootFiles, findBootFiles } from './boot-files.js';
import { loadBase } from './load-base.js';
import { checkFsMap, planRootFs, type RenderFsType } from './plan-root-fs.js';
import { writeOptionsFor, writeRender } from './write-render.js';

export interface RenderFsOptions {
  /** The image to write. */
  readonly out: string;
  readonly format?: WritableFormat;
  /** The filesystem to write (default ext4). */
  readonly fs?: RenderFsType;
  /** Filesystem size in bytes; absent: the smallest that holds the tree. */
  readonly size?: number;
  readonly label?: string;
  /**
   * A previous render of the same lineage (its map sits beside it as
   * IMAGE.ferry-map.json), or that map alone (a path ending in .json).
   */
  readonly base?: string;
  /** With a base: zero the blocks freed since it (default: they keep the old bytes). */
  readonly zeroFreed?: boolean;
  /** Write the kernel and initrd found under /boot to these files (the AKI and ARI). */
  readonly kernelOut?: string;
  readonly initrdOut?: string;
  readonly overwrite?: boolean;
  readonly signal?: AbortSignal;
  readonly onProgress?: (done: number, total: number) => void;
}

export interface RenderFsResult {
  readonly revision: string;
  readonly fs: RenderFsType;
  readonly uuid: string;
  readonly bytes: number;
  readonly fileSize: number;
  readonly map: string;
  /** 512 KiB chunks holding data, and those that differ from the base (all data chunks without one). */
  readonly dataChunks: number;
  readonly changedChunks: number;
  readonly totalChunks: number;
  readonly keptFiles: number;
  readonly inodes: number;
  readonly kernel: { readonly path: string; readonly version: string } | null;
  readonly initrd: { readonly path: string } | null;
}

export { mapPathOf } from './load-base.js';

/**
 * Renders a revision as a partitionless ext4 or XFS filesystem image: the
 * smallest that holds the tree (or `size`), deterministic, and with a base,
 * keeping every unchanged file's inode and blocks. Writes IMAGE.ferry-map.json for
 * the next render, and the kernel and initrd when asked.
 */
export async function renderFilesystem(
  store: LocalStore,
  revision: string,
  manifest: Manifest,
  options: RenderFsOptions,
): Promise<RenderFsResult> {
  const fs = options.fs ?? 'ext4';
  const base =
    options.base === undefined
      ? undefined
      : await loadBase(options.base, 'an image', (raw) => {
          const map = checkFsMap(fs, raw);
          return { map, bytes: map.blocksCount * 4096 };
        });
  try {
    const blocks = options.size === undefined ? undefined : Math.floor(options.size / 4096);
    const plan = planRootFs(fs, manifest, {
      revision,
      ...(blocks === undefined ? {} : { blocks }),
      ...(options.label === undefined ? {} : { label: options.label }),
      ...(base === undefined ? {} : { base: base.map, writeKept: base.image === null }),
    });
    const bytes = plan.blocksCount * 4096;
    const written = await writeRender(
      plan,
      plan.map,
      writeOptionsFor((h) => store.objects.pathOf(h), options, base),
    );
    const boot = findBootFiles(manifest);
    const kernel = await writeBootFile(store, boot, 'kernel', options.kernelOut, options.signal);
    const initrd = await writeBootFile(store, boot, 'initrd', options.initrdOut, options.signal);
    return {
      revision,
      fs,
      uuid: formatUuid(plan.uuid),
      bytes,
      fileSize: written.fileSize,
      map: written.map,
      dataChunks: written.dataChunks,
      changedChunks: written.changedChunks,
      totalChunks: written.totalChunks,
      keptFiles: plan.keptFiles,
      inodes: plan.inodes,
      kernel: kernel === null || boot === null ? null : { path: kernel, version: boot.version },
      initrd: initrd === null ? null : { path: initrd },
    };
  } finally {
    await base?.image?.close();
  }
}

async function writeBootFile(
  store: LocalStore,
  boot: BootFiles | null,
  which: 'kernel' | 'initrd',
  out: string | undefined,
  signal: AbortSignal | undefined,
): Promise<string | null> {
  if (out === undefined) return null;
  const entry = boot === null ? null : which === 'kernel' ? boot.kernel : boot.initrd;
  if (entry === null)
    throw new FerryError(
      'FERRY_RENDER_INPUT',
      `Cannot write the ${which}: the revision has no ${which} under /boot`,
    );
  // Streamed to a temporary file beside the destination, then renamed: memory stays at one chunk.
  const tmp = `${out}.${randomBytes(6).toString('hex')}.tmp`;
  const fh = await open(tmp, 'wx', 0o644);
  try {
    for await (const c of store.objects.read(entry.hash!, signal)) await fh.write(c);
    await fh.sync();
    await fh.close();
    await rename(tmp, out);
  } catch (error) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw error;
  }
  return out;
}

export function formatUuid(u: Buffer): string {
  const h = u.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
