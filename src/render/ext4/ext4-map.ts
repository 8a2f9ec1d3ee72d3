import { FerryError } from '../../errors/index.js';
import type { Run } from './extents.js';

/** Where one path of a render lives: what a later render needs to keep its blocks. */
export interface MapNode {
  readonly ino: number;
  readonly type: string;
  /** file: content hash and size. */
  readonly hash?: string;
  readonly size?: number;
  /** Data blocks (file contents, directory blocks, a long symlink target). */
  readonly runs: readonly Run[];
  /** Extent leaf blocks. */
  readonly leaves: readonly number[];
  /** External extended attribute block, or 0. */
  readonly xattrBlock: number;
}

/**
 * The block map of an ext4 render, written beside the image: its identity
 * and geometry, and where every path's inode and blocks are. `--base`
 * reads it to keep unchanged files in place.
 */
export interface Ext4Map {
  readonly format: 'ferry-ext4-map';
  readonly version: 1;
  readonly revision: string;
  readonly uuid: string;
  readonly hashSeed: string;
  readonly blocksCount: number;
  readonly inodesPerGroup: number;
  readonly journal: readonly Run[];
  readonly nodes: Readonly<Record<string, MapNode>>;
}

const MAX_MAP_NODES = 4_000_000;

function bad(reason: string): FerryError {
  return new FerryError('FERRY_RENDER_INPUT', `Cannot use the base block map: ${reason}`);
}

const isCount = (n: unknown, max = 2 ** 48): n is number =>
  typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 && n <= max;

function checkRuns(v: unknown, blocks: number, what: string): Run[] {
  if (!Array.isArray(v) || v.length > 1_000_000) throw bad(`${what} has no run list`);
  return v.map((r: unknown) => {
    if (r === null || typeof r !== 'object') throw bad(`${what} has a malformed run`);
    const x = r as Partial<Run>;
    if (
      !isCount(x.logical, 2 ** 32) ||
      !isCount(x.physical) ||
      !isCount(x.length, 2 ** 32) ||
      x.length === 0
    )
      throw bad(`${what} has a malformed run`);
    if (x.physical + x.length > blocks)
      throw bad(`${what} has a run past the end of the filesystem`);
    return { logical: x.logical, physical: x.physical, length: x.length };
  });
}

/** Checks a block map read from disk: every number in range, every run inside the filesystem. */
export function checkExt4Map(raw: unknown): Ext4Map {
  const m = raw as Partial<Ext4Map>;
  if (m === null || typeof m !== 'object' || m.format !== 'ferry-ext4-map' || m.version !== 1)
    throw bad('it is not a ferry ext4 block map (version 1)');
  if (!isCount(m.blocksCount) || m.blocksCount === 0) throw bad('blocksCount is not a count');
  if (!isCount(m.inodesPerGroup, 32768) || m.inodesPerGroup % 16 !== 0 || m.inodesPerGroup === 0)
    throw bad('inodesPerGroup is out of range');
  if (typeof m.uuid !== 'string' || !/^[0-9a-f]{32}$/.test(m.uuid)) throw bad('uuid is malformed');
  if (typeof m.hashSeed !== 'string' || !/^[0-9a-f]{32}$/.test(m.hashSeed))
    throw bad('hashSeed is malformed');
  if (typeof m.revision !== 'string') throw bad('revision is missing');
  const blocksCount = m.blocksCount;
  const journal = checkRuns(m.journal, m.blocksCount, 'the journal');
  if (m.nodes === null || typeof m.nodes !== 'object') throw bad('nodes is missing');
  const entries = Object.entries(m.nodes);
  if (entries.length > MAX_MAP_NODES) throw bad('it lists too many paths');
  const nodes: Record<string, MapNode> = {};
  for (const [path, n] of entries) {
    if (n === null || typeof n !== 'object')
      throw bad(`the entry for "${path.slice(0, 100)}" is malformed`);
    const x = n as Partial<MapNode>;
    if (!isCount(x.ino, 2 ** 32) || x.ino < 2 || typeof x.type !== 'string')
      throw bad(`the entry for "${path.slice(0, 100)}" is malformed`);
    if (!isCount(x.xattrBlock) || x.xattrBlock >= blocksCount)
      throw bad(`the entry for "${path.slice(0, 100)}" has a bad xattr block`);
    if (
      !Array.isArray(x.leaves) ||
      x.leaves.length > 4 ||
      !x.leaves.every((b) => isCount(b) && b < blocksCount)
    )
      throw bad(`the entry for "${path.slice(0, 100)}" has bad extent leaves`);
    if (x.hash !== undefined && (typeof x.hash !== 'string' || !/^[0-9a-f]{128}$/.test(x.hash)))
      throw bad(`the entry for "${path.slice(0, 100)}" has a bad hash`);
    if (x.size !== undefined && !isCount(x.size))
      throw bad(`the entry for "${path.slice(0, 100)}" has a bad size`);
    nodes[path] = {
      ino: x.ino,
      type: x.type,
      ...(x.hash === undefined ? {} : { hash: x.hash }),
      ...(x.size === undefined ? {} : { size: x.size }),
      runs: checkRuns(x.runs, m.blocksCount, `the entry for "${path.slice(0, 100)}"`),
      leaves: x.leaves,
      xattrBlock: x.xattrBlock,
    };
  }
  return {
    format: 'ferry-ext4-map',
    version: 1,
    revision: m.revision,
    uuid: m.uuid,
    hashSeed: m.hashSeed,
    blocksCount: m.blocksCount,
    inodesPerGroup: m.inodesPerGroup,
    journal,
    nodes,
  };
}
