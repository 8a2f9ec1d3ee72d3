/**
 * What one publish puts into Glance: for a disk layout, one image (the disk
 * converted to the target's format); for the fs layout, the triple of the
 * AMI/AKI/ARI convention: the kernel as an aki, the initrd as an ari, and
 * the root filesystem as an ami whose kernel_id and ramdisk_id name them.
 * Converted files are shared by the placements that want the same format
 * and removed when the last of them is done with it.
 */

import { readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { convertImage } from '../../disk/index.js';
import type { PublishedImage } from '../publish.js';
import type { GlanceDiskFormat, GlanceOptions } from './glance-options.js';

export type PartRole = 'kernel' | 'ramdisk' | 'root';

export interface GlancePart {
  readonly role: PartRole;
  /** The file to upload, whole. */
  readonly path: string;
  readonly size: number;
  readonly diskFormat: GlanceDiskFormat | 'aki' | 'ari' | 'ami';
  readonly containerFormat: 'bare' | 'aki' | 'ari' | 'ami';
}

export interface PreparedParts {
  /** In upload order: kernel and ramdisk first, the image that names them last. */
  readonly parts: readonly GlancePart[];
  /** Gives the files back (the last user of a converted file removes it). */
  release(): Promise<void>;
}

interface Shared {
  readonly ready: Promise<number>;
  users: number;
}

/** Converted files in use in this process, by path. */
const shared = new Map<string, Shared>();

async function sizeOf(path: string): Promise<number> {
  return (await stat(path)).size;
}

const EXTENSION: Readonly<Record<GlanceDiskFormat, string>> = {
  qcow2: 'qcow2',
  raw: 'raw',
  vmdk: 'vmdk',
  vhd: 'vhd',
  vhdx: 'vhdx',
};

/** Converts `image` once per format for every placement that asks at the same time. */
async function converted(
  image: PublishedImage,
  dir: string,
  contentHash: string,
  options: GlanceOptions,
  signal: AbortSignal,
): Promise<{ path: string; size: number; release: () => Promise<void> }> {
  const name = `glance-${contentHash.slice(0, 16)}${options.compress ? '-z' : ''}.${EXTENSION[options.diskFormat]}`;
  const path = join(dir, name);
  let entry = shared.get(path);
  if (entry === undefined) {
    const temp = `${path}.${process.pid}.tmp`;
    const ready = (async () => {
      // A killed publish leaves its temporary file; the state lock says none is running now.
      const stale = `${basename(path)}.`;
      for (const f of await readdir(dir).catch(() => []))
        if (f.startsWith(stale) && f.endsWith('.tmp')) await rm(join(dir, f), { force: true });
      await convertImage(image.path, temp, {
        to: options.diskFormat,
        ...(options.compress ? { compress: true } : {}),
        ...(options.diskFormat === 'vhd' ? { vhdSubformat: 'dynamic' as const } : {}),
        overwrite: true,
        signal,
      });
      await rename(temp, path);
      return sizeOf(path);
    })();
    entry = { ready, users: 0 };
    shared.set(path, entry);
    ready.catch(() => {
      if (shared.get(path) === entry) shared.delete(path);
      void rm(temp, { force: true });
    });
  }
  entry.users++;
  const mine = entry;
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    mine.users--;
    if (mine.users === 0 && shared.get(path) === mine) {
      shared.delete(path);
      await rm(path, { force: true });
    }
  };
  try {
    return { path, size: await mine.ready, release };
  } catch (error) {
    await release();
    throw error;
  }
}

/**
 * The parts of `image` for a target with `options`. A raw render goes up as
 * it is; any other disk is converted into `dir`. The fs layout's parts are
 * the files the render left (no conversion: aki, ari and ami are raw bytes).
 */
export async function prepareParts(
  image: PublishedImage,
  options: GlanceOptions,
  dir: string,
  signal: AbortSignal,
): Promise<PreparedParts> {
  const contentHash = image.source.contentHash;
  if (image.boot !== undefined) {
    const parts: GlancePart[] = [
      {
        role: 'kernel',
        path: image.boot.kernel,
        size: await sizeOf(image.boot.kernel),
        diskFormat: 'aki',
        containerFormat: 'aki',
      },
    ];
    if (image.boot.initrd !== null)
      parts.push({
        role: 'ramdisk',
        path: image.boot.initrd,
        size: await sizeOf(image.boot.initrd),
        diskFormat: 'ari',
        containerFormat: 'ari',
      });
    parts.push({
      role: 'root',
      path: image.path,
      size: await sizeOf(image.path),
      diskFormat: 'ami',
      containerFormat: 'ami',
    });
    return { parts, release: async () => {} };
  }
  if (options.diskFormat === 'raw' && image.map !== null)
    return {
      parts: [
        {
          role: 'root',
          path: image.path,
          size: await sizeOf(image.path),
          diskFormat: 'raw',
          containerFormat: 'bare',
        },
      ],
      release: async () => {},
    };
  const file = await converted(image, dir, contentHash, options, signal);
  return {
    parts: [
      {
        role: 'root',
        path: file.path,
        size: file.size,
        diskFormat: options.diskFormat,
        containerFormat: 'bare',
      },
    ],
    release: file.release,
  };
}
