/**
 * What an XFS render writes beside its image: identity and geometry, and
 * each path's inode. A later render does not take it as a base yet
 * (`--fs xfs --base` is refused); it is there for inspection and for that.
 */
export interface XfsMap {
  readonly format: 'ferry-xfs-map';
  readonly version: 1;
  readonly revision: string;
  readonly uuid: string;
  readonly blocksCount: number;
  readonly agcount: number;
  readonly agblocks: number;
  readonly nodes: Readonly<Record<string, { readonly ino: number; readonly type: string }>>;
}
