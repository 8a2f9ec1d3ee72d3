import { FerryError } from '../errors/index.js';
import type { Manifest } from '../store/index.js';
import type { Ext4Map } from './ext4/ext4-map.js';
import { ext4Uuid, planExt4 } from './ext4/plan-ext4.js';
import type { FsLayout } from './write-fs-image.js';
import { planXfs, xfsUuid } from './xfs/plan-xfs.js';
import type { XfsMap } from './xfs/xfs-map.js';

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
  /** An ext4 base map; XFS renders take none. */
  readonly base?: Ext4Map;
}

/** Refuses a base for a filesystem whose writer does not keep blocks in place yet. */
export function checkBaseSupported(fs: RenderFsType, base: string | undefined): void {
  if (fs === 'xfs' && base !== undefined)
    throw new FerryError(
      'FERRY_NOT_CAPABLE',
      'Cannot render with --base: the XFS writer does not keep a base in place yet',
      { hint: 'Render --fs xfs without --base, or use --fs ext4 for incremental renders' },
    );
}

/** The UUID a render of `revision` gives its root filesystem. */
export function rootFsUuid(fs: RenderFsType, revision: string, base?: Ext4Map): Buffer {
  return fs === 'xfs' ? xfsUuid(revision) : ext4Uuid(revision, base);
}

/** Lays out the filesystem of kind `fs` for a tree. */
export function planRootFs(fs: RenderFsType, tree: Manifest, options: RootFsOptions): RootFsPlan {
  if (fs === 'xfs') {
    const p = planXfs(tree, {
      revision: options.revision,
      ...(options.blocks === undefined ? {} : { blocks: options.blocks }),
      ...(options.label === undefined ? {} : { label: options.label }),
    });
    return { ...p, inodes: p.stats.inodes, keptFiles: 0 };
  }
  const p = planExt4(tree, options);
  return { ...p, inodes: p.stats.inodes, keptFiles: p.stats.keptFiles };
}
