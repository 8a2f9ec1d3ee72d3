import { FerryError } from '../../errors/index.js';

/** A run of a file's blocks: logical block `offset` onward at linear block `start`. */
export interface MapRun {
  readonly offset: number;
  readonly start: number;
  readonly length: number;
}

export interface XfsMapNode {
  readonly ino: number;
  readonly type: string;
  /** Files: content hash, size and data runs (what a later render keeps in place). */
  readonly hash?: string;
  readonly size?: number;
  readonly runs?: readonly MapRun[];
}

/**
 * What an XFS render writes beside its image: identity and geometry, the
 * inode chunks, every block in use, and each path's inode (files: their
 * data runs). `--base` reads it to keep the geometry, the inode numbers
 * and every unchanged file's blocks.
 */
export interface XfsMap {
  readonly format: 'ferry-xfs-map';
  readonly version: 1;
  readonly revision: string;
  readonly uuid: string;
  readonly blocksCount: number;
  readonly agcount: number;
  readonly agblocks: number;
  /** Blocks of the internal log (at the start of the middle AG, after its headers). */
  readonly logBlocks: number;
  /** Linear first blocks of the inode chunks, in inode order. */
  readonly chunks: readonly number[];
  /** Linear runs of every block in use outside the AG headers and the log. */
  readonly used: readonly { readonly start: number; readonly length: number }[];
  readonly nodes: Readonly<Record<string, XfsMapNode>>;
}

const MAX_MAP_NODES = 4_000_000;

function bad(reason: string): FerryError {
  return new FerryError('FERRY_RENDER_INPUT', `Cannot use the base block map: ${reason}`);
}

const isCount = (n: unknown, max = 2 ** 48): n is number =>
  typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 && n <= max;

/** Checks an XFS block map read from disk: every number in range, every run inside the filesystem. */
export function checkXfsMap(raw: unknown): XfsMap {
  const m = raw as Partial<XfsMap>;
  if (m === null || typeof m !== 'object' || m.format !== 'ferry-xfs-map' || m.version !== 1)
    throw bad('it is not a ferry XFS block map (version 1)');
  if (typeof m.revision !== 'string') throw bad('revision is missing');
  if (typeof m.uuid !== 'string' || !/^[0-9a-f]{32}$/.test(m.uuid)) throw bad('uuid is malformed');
  if (!isCount(m.agblocks, 2 ** 28) || m.agblocks < 4096) throw bad('agblocks is out of range');
  if (!isCount(m.agcount, 2 ** 20) || m.agcount < 2) throw bad('agcount is out of range');
  if (!isCount(m.logBlocks, m.agblocks - 64) || m.logBlocks < 512)
    throw bad('logBlocks is out of range');
  const blocks = m.blocksCount;
  if (!isCount(blocks) || blocks > m.agcount * m.agblocks || blocks <= (m.agcount - 1) * m.agblocks)
    throw bad('blocksCount does not match the AGs');
  const run = (r: unknown, what: string): { start: number; length: number } => {
    if (r === null || typeof r !== 'object') throw bad(`${what} has a malformed run`);
    const x = r as { start?: unknown; length?: unknown };
    if (!isCount(x.start) || !isCount(x.length) || x.length === 0 || x.start + x.length > blocks)
      throw bad(`${what} has a run outside the filesystem`);
    return { start: x.start, length: x.length };
  };
  if (!Array.isArray(m.chunks) || m.chunks.length === 0 || m.chunks.length > 2 ** 26)
    throw bad('the inode chunk list is malformed');
  const chunks = m.chunks.map((c) => run({ start: c, length: 8 }, 'an inode chunk').start);
  if (!Array.isArray(m.used) || m.used.length > 2 ** 26)
    throw bad('the used block list is malformed');
  const used = m.used.map((r) => run(r, 'the used block list'));
  if (m.nodes === null || typeof m.nodes !== 'object') throw bad('nodes is missing');
  const entries = Object.entries(m.nodes);
  if (entries.length > MAX_MAP_NODES) throw bad('it lists too many paths');
  const nodes: Record<string, XfsMapNode> = {};
  for (const [path, n] of entries) {
    const what = `the entry for "${path.slice(0, 100)}"`;
    if (n === null || typeof n !== 'object') throw bad(`${what} is malformed`);
    const x = n as Partial<XfsMapNode>;
    if (!isCount(x.ino, 2 ** 32 - 1) || typeof x.type !== 'string')
      throw bad(`${what} is malformed`);
    if (x.hash !== undefined && (typeof x.hash !== 'string' || !/^[0-9a-f]{128}$/.test(x.hash)))
      throw bad(`${what} has a bad hash`);
    if (x.size !== undefined && !isCount(x.size)) throw bad(`${what} has a bad size`);
    if (x.runs !== undefined && (!Array.isArray(x.runs) || x.runs.length > 1_000_000))
      throw bad(`${what} has a malformed run list`);
    const runs = x.runs?.map((r) => {
      if (r === null || typeof r !== 'object') throw bad(`${what} has a malformed run`);
      const o = (r as Partial<MapRun>).offset;
      if (!isCount(o)) throw bad(`${what} has a malformed run`);
      return { offset: o, ...run(r, what) };
    });
    nodes[path] = {
      ino: x.ino,
      type: x.type,
      ...(x.hash === undefined ? {} : { hash: x.hash }),
      ...(x.size === undefined ? {} : { size: x.size }),
      ...(runs === undefined ? {} : { runs }),
    };
  }
  return {
    format: 'ferry-xfs-map',
    version: 1,
    revision: m.revision,
    uuid: m.uuid,
    blocksCount: blocks,
    agcount: m.agcount,
    agblocks: m.agblocks,
    logBlocks: m.logBlocks,
    chunks,
    used,
    nodes,
  };
}
