import type { BlockRun, XfsAllocator } from './allocator.js';
import { BLOCK_SIZE } from './constants.js';
import type { XfsGeometry } from './geometry.js';
import type { Node } from './tree-nodes.js';
import type { XfsMap } from './xfs-map.js';

/** Changed files of at least this many blocks (a 512 KiB chunk) are rewritten in place over a base. */
const IN_PLACE_BLOCKS = 128;

/**
 * Marks the blocks of files a base holds: unchanged ones stay (and are not
 * written again), changed ones of the same size of at least 512 KiB are
 * rewritten in place; the rest get new blocks.
 */
export function keepFiles(
  nodes: Node[],
  base: XfsMap,
  alloc: XfsAllocator,
  geo: XfsGeometry,
): void {
  for (const n of nodes) {
    n.keep = null;
    const e = n.entry;
    const b = base.nodes[n.path];
    if (e.type !== 'file' || b?.type !== 'file' || b.runs === undefined) continue;
    const blocks = Math.ceil(e.size / BLOCK_SIZE);
    let logical = 0;
    let fits = true;
    for (const r of b.runs) {
      if (r.offset !== logical || geo.agOf(r.start) !== geo.agOf(r.start + r.length - 1))
        fits = false;
      for (let x = r.start; x < r.start + r.length && fits; x++) if (alloc.isUsed(x)) fits = false;
      logical += r.length;
    }
    if (!fits || logical !== blocks) continue;
    const same = b.hash === e.hash && b.size === e.size;
    if (!same && blocks < IN_PLACE_BLOCKS) continue;
    for (const r of b.runs) alloc.markRun(r.start, r.length);
    n.keep = { runs: b.runs, rewrite: !same };
  }
}

/** The 512 KiB chunks (128 blocks) of the filesystem its base left wholly free, in block order. */
export function freeChunks(base: XfsMap, geo: XfsGeometry): BlockRun[] {
  const chunk = 128;
  const busy = new Uint8Array(Math.ceil(geo.dblocks / chunk));
  for (const r of base.used)
    for (let c = Math.floor(r.start / chunk); c * chunk < r.start + r.length; c++) busy[c] = 1;
  const out: BlockRun[] = [];
  for (let c = 0; c < busy.length; c++) {
    if (busy[c] === 1) continue;
    let start = c * chunk;
    const end = Math.min(start + chunk, geo.dblocks);
    // A chunk across an AG boundary is offered as its two halves.
    const agEnd = geo.agStart(geo.agOf(start)) + geo.agLength(geo.agOf(start));
    if (agEnd < end) {
      out.push({ start, length: agEnd - start });
      start = agEnd;
    }
    if (end > start) out.push({ start, length: end - start });
  }
  return out;
}
