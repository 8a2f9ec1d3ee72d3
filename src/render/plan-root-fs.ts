import { FerryError } from '../errors/index.js';
import type { Manifest } from '../store/index.js';
import type { Ext4Map } from './ext4/ext4-map.js';
import { checkExt4Map } from './ext4/ext4-map.js';
import { ext4Uuid, planExt4 } from './ext4/plan-ext4.js';
import type { FsLayout } from './write-fs-image.js';
import { planXfs, xfsUuid } from './xfs/plan-xfs.js';
import { checkXfsMap, type XfsMap } from './xfs/xfs-map.js';

/** The filesystems ferry writes. */
export type RenderFsType = 'ext4' | 'xfs';

/** A laid-out filesystem of either kind, with what the render reports of it. */
export interface RootFsPlan extends FsLayout {
  readonly uuid: Buffer;
  readonly map: Ext4Map | XfsMap;
  readonly inodes: number;
  readonly keptFiles: number;
}

export interface RootFsOptions {
  readonly revision: string;
  readonly blocks?: number;
  readonly label?: string;
  /** The base render's map, of the same filesystem. */
  readonly base?: Ext4Map | XfsMap;
  /** The base's bytes are not at hand (its map alone): kept files are written too. */
  readonly writeKept?: boolean;
}

/** Checks a base's filesystem map: the kind `fs` asks for, every field in range. */
export function checkFsMap(fs: RenderFsType, raw: unknown): Ext4Map | XfsMap {
  const format = (raw as { format?: unknown } | null)?.format;
  const other = fs === 'xfs' ? 'ferry-ext4-map' : 'ferry-xfs-map';
  if (format === other)
    throw new FerryError(
      'FERRY_RENDER_INPUT',
      `Cannot use the base: it is ${fs === 'xfs' ? 'an ext4' : 'an XFS'} render, and this one is ${fs}`,
      { hint: `Render with --fs ${fs === 'xfs' ? 'ext4' : 'xfs'}, or without --base` },
    );
  return fs === 'xfs' ? checkXfsMap(raw) : checkExt4Map(raw);
}

/** The UUID a render of `revision` gives its root filesystem (a base passes its own on). */
export function rootFsUuid(fs: RenderFsType, revision: string, base?: Ext4Map | XfsMap): Buffer {
  if (base !== undefined) return Buffer.from(base.uuid, 'hex');
  return fs === 'xfs' ? xfsUuid(revision) : ext4Uuid(revision);
}

/** Lays out the filesystem of kind `fs` for a tree. */
export function planRootFs(fs: RenderFsType, tree: Manifest, options: RootFsOptions): RootFsPlan {
  const base = options.base;
  const common = {
    revision: options.revision,
    ...(options.blocks === undefined ? {} : { blocks: options.blocks }),
    ...(options.label === undefined ? {} : { label: options.label }),
    ...(options.writeKept === undefined ? {} : { writeKept: options.writeKept }),
  };
  if (fs === 'xfs') {
    if (base !== undefined && base.format !== 'ferry-xfs-map')
      throw new FerryError('FERRY_INTERNAL', 'Cannot lay out XFS over an ext4 base');
    const p = planXfs(tree, { ...common, ...(base === undefined ? {} : { base }) });
    return { ...p, inodes: p.stats.inodes, keptFiles: p.stats.keptFiles };
  }
  if (base !== undefined && base.format !== 'ferry-ext4-map')
    throw new FerryError('FERRY_INTERNAL', 'Cannot lay out ext4 over an XFS base');
  const p = planExt4(tree, { ...common, ...(base === undefined ? {} : { base }) });
  return { ...p, inodes: p.stats.inodes, keptFiles: p.stats.keptFiles };
}
